// HAProxy with the shipped recipe (deploy/haproxy/comet.cfg), and subscribers that
// reconnect through it like a browser client does, for haproxy_failover.test.mjs.
//
// The recipe runs UNCHANGED: its addresses are environment variables with defaults
// ("${COMET_SIDECAR1-127.0.0.1:8080}" ...), which the test sets to free loopback ports.
// The only addition is a second file with a `global` section holding a stats socket
// (HAProxy merges global sections), so the test can read the servers' states.
//
// Subscribers (wsFailoverSubscriber, sseFailoverSubscriber, pollFailoverSubscriber) keep
// their cursor and reconnect with it, as comet.js does: WebSocket /ws?ch=&cursor= after
// a close; EventSource by itself with Last-Event-ID (and a new EventSource from the last
// cursor if it gives up, e.g. on an HTTP error); long-poll the next /poll with the
// cursor of the last answer. Each records its messages ({id, epoch, data}), its
// reconnects and the HTTP errors it met (status and body, which tell whether HAProxy
// or the sidecar answered).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { waitUntil, withTimeout } from './async.mjs';
import { canConnect, findBinary } from './processes.mjs';
import { EventSource, WebSocket } from './clients.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const HAPROXY_RECIPE = process.env.COMET_HAPROXY_RECIPE || path.join(repoRoot, 'deploy/haproxy/comet.cfg');

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

export class HAProxy {
  /**
   * Runs `haproxy -db -f <recipe> -f <stats.cfg>` with COMET_HAPROXY_BIND,
   * COMET_HAPROXY_PUBLISH_BIND, COMET_SIDECAR1, COMET_SIDECAR2 set from the arguments
   * (ports on 127.0.0.1). Waits until both frontends accept connections.
   */
  static async start({ port, publishPort, servers, recipe = HAPROXY_RECIPE }) {
    const bin = findBinary('COMET_HAPROXY_BIN', 'haproxy', ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy']);
    if (!bin) {
      throw new Error('haproxy not found: install the Debian package "haproxy" (apt-get install haproxy), or set COMET_HAPROXY_BIN');
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-haproxy-'));
    const socket = path.join(dir, 'admin.sock');
    const extra = path.join(dir, 'stats.cfg');
    // Loaded before the recipe, so that its "log global" sees the log target.
    writeFileSync(
      extra,
      '# added by the test: the runtime API (server states) and a log (stdout)\n' +
        `global\n    stats socket ${socket} mode 600 level admin\n    log stdout format raw local0\n`,
    );
    const env = {
      ...process.env,
      COMET_HAPROXY_BIND: `127.0.0.1:${port}`,
      COMET_HAPROXY_PUBLISH_BIND: `127.0.0.1:${publishPort}`,
    };
    servers.forEach((p, i) => {
      env[`COMET_SIDECAR${i + 1}`] = `127.0.0.1:${p}`;
    });
    const args = ['-db', '-f', extra, '-f', recipe];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    live.add(child);
    const proxy = new HAProxy(child, dir, socket, port, publishPort, args);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c) => {
      proxy.log += c;
    });
    child.stderr.on('data', (c) => {
      proxy.log += c;
    });
    try {
      await waitUntil(
        async () => {
          if (proxy.exit) throw new Error(`haproxy exited at startup (${JSON.stringify(proxy.exit)}):\n${proxy.log}`);
          return (await canConnect(port)) && (await canConnect(publishPort)) && existsSync(socket);
        },
        { timeoutMs: 10000, intervalMs: 20, what: 'haproxy to listen' },
      );
    } catch (err) {
      await proxy.stop();
      throw err;
    }
    return proxy;
  }

  constructor(child, dir, socket, port, publishPort, args) {
    this.child = child;
    this.dir = dir;
    this.socket = socket;
    this.port = port;
    this.publishPort = publishPort;
    this.args = args;
    this.log = '';
    this.exit = null;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}`;
  }

  get publishUrl() {
    return `http://127.0.0.1:${this.publishPort}`;
  }

  /** One runtime API command; resolves with the answer text. */
  command(line) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const s = net.connect(this.socket);
        let out = '';
        s.setEncoding('utf8');
        s.on('connect', () => s.write(`${line}\n`));
        s.on('data', (c) => {
          out += c;
        });
        s.on('end', () => resolve(out));
        s.on('error', reject);
      }),
      5000,
      `haproxy runtime API: ${line}`,
    );
  }

  /** {server name: status} of `backend` ("UP", "DOWN", "UP 1/2", "MAINT", ...). */
  async serverStates(backend = 'sidecars') {
    const csv = await this.command('show stat');
    const lines = csv.split('\n').filter((l) => l && !l.startsWith('#'));
    const header = csv.split('\n')[0].replace(/^# /, '').split(',');
    const col = (name) => header.indexOf(name);
    const out = {};
    for (const l of lines) {
      const f = l.split(',');
      if (f[col('pxname')] !== backend || f[col('svname')] === 'BACKEND') continue;
      out[f[col('svname')]] = f[col('status')];
    }
    return out;
  }

  async waitServer(server, status, { timeoutMs = 10000, backend = 'sidecars' } = {}) {
    let last;
    await waitUntil(
      async () => {
        last = await this.serverStates(backend);
        return last[server] === status;
      },
      { timeoutMs, intervalMs: 50, what: `haproxy to see ${backend}/${server} ${status} (last ${JSON.stringify(last)})` },
    );
  }

  async stop() {
    if (this.exit === null) {
      this.child.kill('SIGTERM');
      await withTimeout(this.exited, 5000, 'haproxy to exit').catch(() => {
        this.child.kill('SIGKILL');
        return this.exited;
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------
// Reconnecting subscribers

const RECONNECT_MS = 100; // like comet.js's first retry and the test sidecars' --sse-retry

class FailoverSubscriber {
  constructor(kind, name, ch) {
    this.kind = kind;
    this.name = name;
    this.ch = ch;
    this.cursor = `${ch}@.0`; // before the channel's first message: everything from id 1
    this.messages = []; // {id, epoch, data} in arrival order
    this.connects = 0; // connections (or polls) that were answered 200 / opened
    this.reconnects = 0; // opens after the first one (stream or socket lost)
    this.errors = []; // {status, body} of refused connects, {error} of network failures
    this.resets = []; // reset notices (none expected)
    this.history = []; // long-poll: the last answers
    this.closed = false;
    this.waiters = [];
  }

  /** An envelope (or notice) for this subscriber's channel. */
  onEnvelope(obj) {
    if (obj.type === 'reset') {
      this.resets.push(obj);
      this.cursor = `${this.ch}@${obj.epoch}.${obj.id}`;
      return;
    }
    if (obj.type !== undefined || obj.id === undefined) return;
    this.messages.push({ id: obj.id, epoch: obj.epoch, data: obj.data, prev: obj.prev });
    this.cursor = `${this.ch}@${obj.epoch}.${obj.id}`;
    this.#wake();
  }

  lastId() {
    return this.messages.length === 0 ? 0 : this.messages[this.messages.length - 1].id;
  }

  /** Resolves once a message with id >= `id` arrived. */
  waitForId(id, timeoutMs) {
    if (this.messages.some((m) => m.id >= id)) return Promise.resolve();
    return withTimeout(
      new Promise((resolve) => this.waiters.push({ id, resolve })),
      timeoutMs,
      `${this.name} to receive id ${id} (last ${this.lastId()}, ${this.messages.length} messages, ${this.reconnects} reconnects, errors ${JSON.stringify(this.errors.slice(-3))})`,
    );
  }

  #wake() {
    const last = this.lastId();
    this.waiters = this.waiters.filter((w) => {
      if (last < w.id) return true;
      w.resolve();
      return false;
    });
  }
}

/** WebSocket /ws?ch=&cursor= through `base` (ws://host:port), reopened after every close. */
export function wsFailoverSubscriber(base, ch, name) {
  const sub = new FailoverSubscriber('ws', name, ch);
  let ws = null;
  const open = () => {
    if (sub.closed) return;
    const url = new URL('/ws', base);
    url.searchParams.set('ch', ch);
    url.searchParams.set('cursor', sub.cursor);
    ws = new WebSocket(url.toString());
    let opened = false;
    let retried = false; // one reconnect per attempt, whichever way it ended
    const retry = () => {
      if (retried || sub.closed) return;
      retried = true;
      setTimeout(open, RECONNECT_MS);
    };
    ws.on('open', () => {
      opened = true;
      if (sub.connects > 0) sub.reconnects += 1;
      sub.connects += 1;
    });
    ws.on('message', (data) => sub.onEnvelope(JSON.parse(data.toString('utf8'))));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => {
        sub.errors.push({ status: res.statusCode, body: body.slice(0, 200) });
        req.destroy();
        retry();
      });
      res.on('error', retry);
    });
    ws.on('error', (err) => {
      if (!opened) sub.errors.push({ error: err.code ?? err.message });
      retry();
    });
    ws.on('close', retry);
  };
  sub.opened = new Promise((resolve) => {
    const check = () => (sub.connects > 0 ? resolve() : setTimeout(check, 10));
    check();
  });
  sub.close = () => {
    sub.closed = true;
    if (ws) ws.terminate();
  };
  open();
  return sub;
}

/**
 * EventSource /sse?ch=&cursor=&format=json through `base`. It reconnects by itself
 * (Last-Event-ID); when it gives up (an HTTP error answer), a new one starts from the
 * last cursor, as comet.js does.
 */
export function sseFailoverSubscriber(base, ch, name) {
  const sub = new FailoverSubscriber('sse', name, ch);
  let es = null;
  const open = () => {
    if (sub.closed) return;
    const url = new URL('/sse', base);
    url.searchParams.set('ch', ch);
    url.searchParams.set('cursor', sub.cursor);
    url.searchParams.set('format', 'json');
    es = new EventSource(url.toString());
    es.addEventListener('open', () => {
      if (sub.connects > 0) sub.reconnects += 1;
      sub.connects += 1;
    });
    const onEvent = (ev) => sub.onEnvelope(JSON.parse(ev.data));
    es.addEventListener('message', onEvent);
    es.addEventListener('comet-reset', onEvent);
    es.addEventListener('error', (ev) => {
      if (ev.code !== undefined) sub.errors.push({ status: ev.code, body: String(ev.message ?? '').slice(0, 200) });
      if (es.readyState === EventSource.CLOSED && !sub.closed) {
        es.close();
        setTimeout(open, RECONNECT_MS);
      }
    });
  };
  sub.opened = new Promise((resolve) => {
    const check = () => (sub.connects > 0 ? resolve() : setTimeout(check, 10));
    check();
  });
  sub.close = () => {
    sub.closed = true;
    if (es) es.close();
  };
  open();
  return sub;
}

/**
 * Long-poll: GET /poll?ch=&cursor= through `base` on a keep-alive connection, the next
 * one with the answer's cursor; after an error the same cursor again.
 */
export function pollFailoverSubscriber(base, ch, name) {
  const sub = new FailoverSubscriber('poll', name, ch);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let req = null;
  const once = () =>
    new Promise((resolve) => {
      const url = new URL('/poll', base);
      url.searchParams.set('ch', ch);
      url.searchParams.set('cursor', sub.cursor);
      req = http.get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode, body, port: res.socket?.localPort }));
        res.on('error', (err) => resolve({ error: err.code ?? err.message }));
      });
      req.on('error', (err) => resolve({ error: err.code ?? err.message }));
    });
  sub.opened = (async () => {
    // The first poll (wait=0) answers at once: the subscriber is "connected".
    for (;;) {
      const url = new URL('/poll', base);
      url.searchParams.set('ch', ch);
      url.searchParams.set('cursor', sub.cursor);
      url.searchParams.set('wait', '0');
      const r = await fetch(url).then(async (res) => ({ status: res.status, body: await res.text() }));
      if (r.status === 200) {
        sub.connects += 1;
        const json = JSON.parse(r.body);
        for (const m of json.messages) sub.onEnvelope(m);
        sub.cursor = json.cursor;
        return;
      }
      sub.errors.push({ status: r.status, body: r.body.slice(0, 200) });
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  })();
  sub.running = sub.opened.then(async () => {
    let failing = false;
    while (!sub.closed) {
      const r = await once();
      if (sub.closed) break;
      if (r.status === 200) {
        if (failing) sub.reconnects += 1;
        failing = false;
        sub.connects += 1;
        const json = JSON.parse(r.body);
        // The last polls (which cursor was sent, what came back, from which local port:
        // HAProxy's log names the client port) for the report of a failure.
        sub.history.push({ at: Date.now(), sent: sub.cursor, ids: json.messages.map((m) => m.id ?? m.type), cursor: json.cursor, port: r.port });
        if (sub.history.length > 30) sub.history.shift();
        for (const m of json.messages) sub.onEnvelope(m);
        sub.cursor = json.cursor;
      } else {
        failing = true;
        sub.errors.push(r.error ? { error: r.error } : { status: r.status, body: r.body.slice(0, 200) });
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
      }
    }
  });
  sub.close = async () => {
    sub.closed = true;
    if (req) req.destroy();
    agent.destroy();
    await sub.running;
  };
  return sub;
}

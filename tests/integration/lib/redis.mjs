// Helpers for the Redis integration tests (redis_*.test.mjs): a private redis-server per
// test file (free loopback port, temp dir, optional AOF persistence), a tiny RESP client
// over node:net, the shipped Lua publish script, comet-sidecar instances wired to Redis,
// and subscribers whose deliveries are checked for loss, duplicates and order.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Queue, waitUntil, withTimeout } from './async.mjs';
import { WebSocket, openEventSource } from './clients.mjs';
import { rawRequest } from './raw.mjs';
import { startSidecar } from './sidecar.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN || 'redis-server';
export const PUBLISH_LUA = readFileSync(path.join(repoRoot, 'bridge/lua/publish.lua'), 'utf8');
export const HISTORY_LUA = readFileSync(path.join(repoRoot, 'bridge/lua/history.lua'), 'utf8');

// ---------------------------------------------------------------------------------
// Free ports

/** A loopback TCP port that was free a moment ago (bind to 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------
// RESP client

export class RedisError extends Error {}

/**
 * A minimal RESP2 client: command(...args) resolves with the reply (strings, numbers,
 * arrays, null; error replies reject with RedisError). Commands pipeline freely; replies
 * are matched in order. Not for SUBSCRIBE (the tests only need regular commands).
 */
export class RespClient {
  static connect(port, host = '127.0.0.1', { timeoutMs = 5000 } = {}) {
    const socket = net.connect({ port, host });
    const client = new RespClient(socket);
    return withTimeout(
      new Promise((resolve, reject) => {
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(client);
        });
        socket.once('error', reject);
      }),
      timeoutMs,
      `Redis connect to ${host}:${port}`,
    ).catch((err) => {
      socket.destroy();
      throw err;
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.pending = [];
    this.closedError = null;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.#drain();
    });
    const fail = (err) => {
      if (this.closedError === null) this.closedError = err ?? new Error('Redis connection closed');
      const pending = this.pending;
      this.pending = [];
      for (const p of pending) p.reject(this.closedError);
    };
    socket.on('error', (err) => fail(err));
    socket.on('close', () => fail(null));
  }

  /** Sends one command; resolves with its reply. */
  command(...args) {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    const parts = [`*${args.length}\r\n`];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(`$${b.length}\r\n`, b, '\r\n');
    }
    this.socket.write(Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)))));
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  close() {
    this.socket.destroy();
  }

  #drain() {
    for (;;) {
      const parsed = parseResp(this.buf, 0);
      if (parsed === null) return;
      this.buf = this.buf.subarray(parsed.end);
      const p = this.pending.shift();
      if (!p) continue; // a reply nobody waits for (cannot happen with regular commands)
      if (parsed.value instanceof RedisError) p.reject(parsed.value);
      else p.resolve(parsed.value);
    }
  }
}

/** Parses one RESP2 value at `offset`: {value, end} or null when incomplete. */
function parseResp(buf, offset) {
  const lineEnd = buf.indexOf('\r\n', offset);
  if (lineEnd < 0) return null;
  const type = String.fromCharCode(buf[offset]);
  const line = buf.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RedisError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.toString('utf8', next, next + n), end: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const out = [];
      let at = next;
      for (let i = 0; i < n; i++) {
        const item = parseResp(buf, at);
        if (item === null) return null;
        out.push(item.value);
        at = item.end;
      }
      return { value: out, end: at };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

// ---------------------------------------------------------------------------------
// redis-server

const liveRedis = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const child of liveRedis) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});

/**
 * A redis-server of this test file: loopback, a free port, its own temp dir. With
 * `persistence` it writes an AOF fsynced on every write (so SIGKILL loses nothing
 * acknowledged); otherwise nothing is saved and a restart starts empty.
 */
/**
 * Waits until the redis-server `child` (its `exited` promise) on `port` answers PING;
 * throws when it exits or fails to spawn first, or after `timeoutMs`. `details()` adds
 * its output to the error.
 */
export async function redisStarted(child, exited, port, { timeoutMs = 10000, name, details = () => '' }) {
  const spawnError = new Promise((_, reject) => child.once('error', reject));
  const died = exited.then((exit) => {
    throw new Error(`${name} exited during startup (${JSON.stringify(exit)}): ${details()}`);
  });
  const ready = waitUntil(
    async () => {
      try {
        const c = await RespClient.connect(port, '127.0.0.1', { timeoutMs: 1000 });
        try {
          // While loading the AOF, Redis answers -LOADING: not ready yet.
          return (await c.command('PING')) === 'PONG';
        } finally {
          c.close();
        }
      } catch {
        return false;
      }
    },
    { timeoutMs, intervalMs: 20, what: `${name} to answer PING` },
  );
  await Promise.race([ready, died, spawnError]);
}

export class RedisServer {
  static async start({ persistence = false } = {}) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-redis-'));
    tempDirs.add(dir);
    // The port is free when picked but could be taken before redis binds it: retry.
    let lastError;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await freePort(), dir, persistence);
      try {
        await server.#spawn();
        return server;
      } catch (err) {
        lastError = err;
      }
    }
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
    throw lastError;
  }

  constructor(port, dir, persistence) {
    this.port = port;
    this.dir = dir;
    this.persistence = persistence;
    this.child = null;
    this.exited = null;
    this.starts = 0;
    this.clients = new Set();
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running() {
    return this.child !== null;
  }

  get log() {
    const file = path.join(this.dir, 'redis.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  async #spawn(timeoutMs = 10000) {
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--logfile', 'redis.log',
      '--daemonize', 'no',
      '--protected-mode', 'no',
      '--save', '',
    ];
    if (this.persistence) args.push('--appendonly', 'yes', '--appendfsync', 'always');
    else args.push('--appendonly', 'no');
    const child = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dir });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    liveRedis.add(child);
    this.child = child;
    this.starts += 1;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveRedis.delete(child);
        if (this.child === child) this.child = null;
        resolve({ code, signal });
      });
    });
    try {
      await redisStarted(child, this.exited, this.port, {
        timeoutMs,
        name: `redis-server on port ${this.port}`,
        details: () => `${stderr}\n${this.log}`,
      });
    } catch (err) {
      if (this.child === child) child.kill('SIGKILL');
      await this.exited;
      throw err;
    }
  }

  /** A new RESP connection (closed by stop()). */
  async client() {
    const c = await RespClient.connect(this.port);
    this.clients.add(c);
    c.socket.on('close', () => this.clients.delete(c));
    return c;
  }

  /** Kills the server (SIGKILL by default) and waits for it to exit. */
  async kill(signal = 'SIGKILL') {
    if (this.child === null) return;
    const exited = this.exited;
    this.child.kill(signal);
    await withTimeout(exited, 10000, `redis-server to exit after ${signal}`);
  }

  /** Starts it again on the same port and data dir (after kill()). */
  async restart() {
    assert.equal(this.child, null, 'restart() needs the server stopped first');
    await this.#spawn();
  }

  /** Teardown: closes clients, kills the server, removes its dir. Safe to call twice. */
  async stop() {
    for (const c of this.clients) c.close();
    this.clients.clear();
    await this.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
    tempDirs.delete(this.dir);
  }
}

// ---------------------------------------------------------------------------------
// The Redis-side format (bridge/lua/publish.lua)

export function pubsubName(ch) {
  return `comet:{${ch}}`;
}

export function channelKeys(ch) {
  return [`comet:{${ch}}:seq`, `comet:{${ch}}:epoch`, `comet:{${ch}}:log`];
}

/** SCRIPT LOAD of the shipped publish.lua; returns its sha. */
export async function loadPublishScript(client) {
  return client.command('SCRIPT', 'LOAD', PUBLISH_LUA);
}

/**
 * Publishes like the sidecar and php-client do (EVALSHA publish.lua). Returns
 * {id, epoch, prev}.
 */
export async function luaPublish(client, sha, ch, data, { event = '', maxlen = 1000, ttl = 0 } = {}) {
  const [id, epoch, prev] = await client.command(
    'EVALSHA', sha, 3, ...channelKeys(ch), pubsubName(ch), data, event, maxlen, ttl,
  );
  return { id, epoch, prev };
}

/**
 * What publish.lua does minus the PUBLISH: the message gets an id and is appended to the
 * stream, but no live subscriber hears of it (a pub/sub message lost on the way).
 */
export const SILENT_PUBLISH_LUA = `
local id = redis.call('INCR', KEYS[1])
local epoch = redis.call('GET', KEYS[2])
if id == 1 or not epoch then return redis.error_reply('silent publish needs an existing channel') end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[3]), id .. '-0',
           'data', ARGV[1], 'event', ARGV[2], 'epoch', epoch, 'prev', id - 1, 'ts', ms)
return { id, epoch, id - 1 }
`;

export async function silentPublish(client, ch, data, { event = '', maxlen = 1000 } = {}) {
  const [id, epoch, prev] = await client.command('EVAL', SILENT_PUBLISH_LUA, 3, ...channelKeys(ch), data, event, maxlen);
  return { id, epoch, prev };
}

// ---------------------------------------------------------------------------------
// comet-sidecar on Redis

/** Starts comet-sidecar on `redis` (2 workers unless `flags` say otherwise). */
export async function startRedisSidecar(redis, flags = [], options = {}) {
  const all = ['--redis', redis.url];
  if (!flags.includes('--workers')) all.push('--workers', '2');
  if (!flags.includes('--sse-retry')) all.push('--sse-retry', '100ms');
  return startSidecar([...all, ...flags], options);
}

/** GET /healthz, whatever its status: 200 when "ok", 503 when "degraded" (asserted). */
export async function health(sidecar) {
  const res = await rawRequest(sidecar.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, res.json?.status === 'ok' ? 200 : 503, res.body);
  return res.json;
}

/** Polls /healthz until its status is `status`. */
export async function waitHealth(sidecar, status, timeoutMs = 20000) {
  let last;
  await waitUntil(
    async () => {
      last = await health(sidecar);
      return last.status === status;
    },
    { timeoutMs, intervalMs: 25, what: `/healthz of :${sidecar.port} to say "${status}" (last: ${JSON.stringify(last)})` },
  );
  return last;
}

/** POST /pub that retries 503 (Redis unreachable) until it answers 200. */
export async function publishRetrying(sidecar, ch, data, { timeoutMs = 20000, event } = {}) {
  const deadline = Date.now() + timeoutMs;
  let retries = 0;
  for (;;) {
    const url = new URL(`/pub/${ch}`, sidecar.publishUrl);
    if (event !== undefined) url.searchParams.set('event', event);
    const res = await fetch(url, { method: 'POST', body: data });
    const text = await res.text();
    if (res.status === 200) return { ...JSON.parse(text), retries };
    if (res.status !== 503 || Date.now() > deadline) {
      throw new Error(`publish to ${ch} answered ${res.status} ${text} (after ${retries} retries)`);
    }
    retries += 1;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// ---------------------------------------------------------------------------------
// Subscribers with normalised deliveries

/**
 * Every subscriber exposes `events`: a Queue of what it received on its channel, in
 * order, each one of
 *   {kind: 'msg', id, prev, epoch, data, event}   a message with an id
 *   {kind: 'bare', data}                           a message without an id
 *   {kind: 'reset', reason, epoch, id}             a reset notice
 *   {kind: 'subscribed', epoch, id}                (WebSocket only)
 * plus `name`, `closedUnexpectedly()` and `close()`.
 */
function fromEnvelope(obj) {
  if (obj.type === 'reset') return { kind: 'reset', ch: obj.ch, reason: obj.reason, epoch: obj.epoch, id: obj.id };
  if (obj.type === 'subscribed') return { kind: 'subscribed', ch: obj.ch, epoch: obj.epoch, id: obj.id };
  if (obj.type !== undefined) return { kind: obj.type, ...obj };
  if (obj.id === undefined) return { kind: 'bare', ch: obj.ch, data: obj.data, raw: obj };
  return { kind: 'msg', ch: obj.ch, id: obj.id, prev: obj.prev, epoch: obj.epoch, data: obj.data, event: obj.event };
}

/**
 * A `ws` WebSocket subscriber. `query` is appended to /ws (e.g. {ch, cursor}); `sub` is
 * sent as a command after opening (e.g. {cmd:'sub', ch, since}).
 */
export async function wsSubscriber(sidecar, { name, query = {}, sub = null, timeoutMs = 10000 } = {}) {
  const url = new URL('/ws', sidecar.wsUrl);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const ws = new WebSocket(url.toString());
  const events = new Queue(name ?? `ws ${url}`);
  let closedByUs = false;
  let closeInfo = null;
  // Listening before 'open': frames that arrive with the handshake answer are not missed.
  ws.on('message', (data, isBinary) => {
    events.push(isBinary ? { kind: 'binary', data } : fromEnvelope(JSON.parse(data.toString('utf8'))));
  });
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() };
      events.close(`socket closed with ${code}`);
      resolve(closeInfo);
    });
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => reject(new Error(`WebSocket handshake answered ${res.statusCode}`)));
    }),
    timeoutMs,
    `WebSocket ${url} to open`,
  );
  ws.on('error', () => {}); // errors after open surface as close codes
  if (sub) ws.send(JSON.stringify(sub));
  return {
    kind: 'ws',
    name: name ?? url.toString(),
    ws,
    events,
    send: (obj) => ws.send(JSON.stringify(obj)),
    closedUnexpectedly: () => !closedByUs && closeInfo !== null,
    closeInfo: () => closeInfo,
    async close() {
      closedByUs = true;
      if (ws.readyState === WebSocket.CLOSED) return;
      ws.close();
      await withTimeout(closed, 5000, 'WebSocket close').catch(() => ws.terminate());
    },
  };
}

/**
 * An `eventsource` subscriber to /sse. `format` 'json' gives envelopes; 'raw' gives
 * the data with the id taken from the event's cursor (lastEventId) for `ch`; raw
 * messages without an id are recognised by `isBare(data)`. `baseUrl` may point at a
 * proxy in front of the sidecar.
 */
export function sseSubscriber(baseUrl, { ch, cursor, format = 'json', name, isBare = () => false, fetch: fetchImpl } = {}) {
  const url = new URL('/sse', baseUrl);
  url.searchParams.set('ch', ch);
  if (cursor !== undefined) url.searchParams.set('cursor', cursor);
  url.searchParams.set('format', format);
  const c = openEventSource(url.toString(), { eventNames: ['comet-reset'], fetch: fetchImpl });
  const events = new Queue(name ?? `sse ${url}`);
  const onEvent = (ev) => {
    if (ev.type === 'comet-reset') {
      events.push(fromEnvelope(JSON.parse(ev.data)));
    } else if (format === 'json') {
      events.push({ ...fromEnvelope(JSON.parse(ev.data)), lastEventId: ev.lastEventId });
    } else if (isBare(ev.data)) {
      events.push({ kind: 'bare', ch, data: ev.data });
    } else {
      const pos = cursorPosition(ev.lastEventId, ch);
      events.push({ kind: 'msg', ch, id: pos.id, epoch: pos.epoch, data: ev.data, lastEventId: ev.lastEventId });
    }
  };
  c.es.addEventListener('message', onEvent);
  c.es.addEventListener('comet-reset', onEvent);
  return {
    kind: 'sse',
    name: name ?? url.toString(),
    es: c.es,
    client: c,
    events,
    // EventSource reconnects by itself; any error event means the stream was dropped.
    closedUnexpectedly: () => c.errors.items.length > 0 || c.opens.items.length > 1,
    async opened(timeoutMs = 10000) {
      await c.opens.waitFor((items) => items.length >= 1, timeoutMs, 'the EventSource to open');
    },
    async close() {
      c.es.close();
    },
  };
}

/** {epoch, id} of `ch` in a cursor "a@E.1,b@E.2". */
export function cursorPosition(cursor, ch) {
  for (const part of (cursor ?? '').split(',')) {
    const at = part.lastIndexOf('@');
    if (part.slice(0, at) !== ch) continue;
    const pos = part.slice(at + 1);
    const dot = pos.lastIndexOf('.');
    return { epoch: pos.slice(0, dot), id: Number(pos.slice(dot + 1)) };
  }
  throw new Error(`cursor ${JSON.stringify(cursor)} has no position for ${ch}`);
}

/** Messages (kind 'msg') received so far. */
export function messagesOf(sub) {
  return sub.events.items.filter((e) => e.kind === 'msg');
}

/** Waits until `sub` has received a message with id >= `id` (in `epoch` if given). */
export async function waitForId(sub, id, { epoch, timeoutMs = 20000 } = {}) {
  await sub.events.waitFor(
    (items) => items.some((e) => e.kind === 'msg' && e.id >= id && (epoch === undefined || e.epoch === epoch)),
    timeoutMs,
    `${sub.name} to receive id ${id}${epoch ? ` of epoch ${epoch}` : ''} (has ${messagesOf(sub).length} messages, last ${JSON.stringify(messagesOf(sub).at(-1))})`,
  );
}

/** Waits until `sub` has received an event matching `pred`; returns it. */
export async function waitForEvent(sub, pred, what, timeoutMs = 20000) {
  const items = await sub.events.waitFor((all) => all.some(pred), timeoutMs, `${sub.name}: ${what}`);
  return items.find(pred);
}

/**
 * Compares what a subscriber received (`got`: {id, data, epoch} in arrival order) with
 * what was published (`expected`, in id order). Returns counts and the first problems.
 */
export function tally(got, expected) {
  const expectedIds = new Map(expected.map((m) => [`${m.epoch}.${m.id}`, m]));
  const counts = new Map();
  let unexpected = 0;
  let wrongData = 0;
  for (const m of got) {
    const key = `${m.epoch}.${m.id}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    const want = expectedIds.get(key);
    if (!want) unexpected += 1;
    else if (want.data !== m.data) wrongData += 1;
  }
  let lost = 0;
  let duplicated = 0;
  for (const m of expected) {
    const n = counts.get(`${m.epoch}.${m.id}`) ?? 0;
    if (n === 0) lost += 1;
    if (n > 1) duplicated += n - 1;
  }
  let outOfOrder = 0;
  for (let i = 1; i < got.length; i++) {
    if (got[i].epoch === got[i - 1].epoch && got[i].id <= got[i - 1].id) outOfOrder += 1;
  }
  return { published: expected.length, received: got.length, lost, duplicated, outOfOrder, unexpected, wrongData };
}

/**
 * Asserts `sub` received exactly `expected` (each once, in order, right data and epoch)
 * as its id'd messages; returns the tally.
 */
export function assertExactlyOnce(sub, expected, { from = 0 } = {}) {
  const got = messagesOf(sub).slice(from);
  const t = tally(got, expected);
  const clean = t.lost === 0 && t.duplicated === 0 && t.outOfOrder === 0 && t.unexpected === 0 && t.wrongData === 0;
  if (!clean || got.length !== expected.length) {
    const ids = got.map((m) => `${m.epoch.slice(-4)}.${m.id}`);
    assert.fail(
      `${sub.name}: ${JSON.stringify(t)}; received ids ${compactIds(got.map((m) => m.id))} (${ids.slice(0, 5).join(' ')}...)` +
        `; expected ${compactIds(expected.map((m) => m.id))}`,
    );
  }
  for (let i = 0; i < expected.length; i++) {
    assert.equal(got[i].id, expected[i].id, `${sub.name}: message #${i}`);
    assert.equal(got[i].epoch, expected[i].epoch, `${sub.name}: epoch of message #${i}`);
    assert.equal(got[i].data, expected[i].data, `${sub.name}: data of id ${expected[i].id}`);
    if (got[i].prev !== undefined) assert.equal(got[i].prev, expected[i].id - 1, `${sub.name}: prev of id ${expected[i].id}`);
  }
  return t;
}

/** "1-200,205,207-210" */
export function compactIds(ids) {
  const out = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    out.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/**
 * Sums the tallies and prints the one-line summary of a test file: messages published,
 * deliveries expected (sum over subscribers), received, lost, duplicated.
 */
export function summarize(label, tallies, { published, extra = '' } = {}) {
  const sum = (k) => tallies.reduce((n, t) => n + t[k], 0);
  const line =
    `${label}: published ${published ?? '?'} / expected ${sum('published')} deliveries to ${tallies.length} subscribers` +
    ` / received ${sum('received')} / lost ${sum('lost')} / duplicated ${sum('duplicated')}` +
    ` / out of order ${sum('outOfOrder')}${extra ? ` (${extra})` : ''}`;
  console.log(line);
  return line;
}

/** Runs the cleanups in reverse order, collecting (not throwing) their errors until the end. */
export async function runCleanups(cleanups) {
  const errors = [];
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('\n'));
}

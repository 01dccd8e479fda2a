// Helpers for the attack suite (attacks.test.mjs): the sidecar's resident memory read
// from /proc, a /healthz latency probe, /metrics as numbers, and raw TCP connections
// from a chosen loopback source address (127.0.0.1 and ::1 are trusted proxies by
// default and so not limited per address; attacks come from 127.0.0.2 and up).

import { readFileSync } from 'node:fs';
import net from 'node:net';

import { withTimeout } from './async.mjs';
import { parseHttpResponse } from './raw.mjs';

/** VmRSS of process `pid` in KiB (0 once it is gone). */
export function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export const MiB = 1024;  // in KiB, the unit rssKiB answers in

/** "12.3 MiB" from KiB. */
export function fmtMiB(kib) {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** True when process `pid` runs with AddressSanitizer (its runtime is mapped, or linked in). */
export function runsUnderAsan(pid, binary) {
  try {
    if (/libasan|libclang_rt\.asan/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'))) return true;
  } catch {
    // fall through to the binary
  }
  try {
    return readFileSync(binary).includes('__asan_init');
  } catch {
    return false;
  }
}

/**
 * ASAN_OPTIONS for a sidecar whose memory is measured: ASan keeps freed memory in a
 * quarantine (256 MiB by default) and gives pages back to the system only every 5 s,
 * so under churn its RSS shows the quarantine, not what the server holds. A small
 * quarantine (still catching use-after-free of recent frees) and a prompt release
 * make RSS mean live memory again. Whatever ASAN_OPTIONS the caller set comes first.
 */
export function measuredAsanEnv() {
  const mine = 'quarantine_size_mb=8:thread_local_quarantine_size_kb=256:allocator_release_to_os_interval_ms=200';
  return { ASAN_OPTIONS: process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:${mine}` : mine };
}

/** Memory of all TCP sockets in the kernel, in KiB (/proc/net/sockstat "TCP: ... mem" pages). */
export function kernelTcpKiB() {
  try {
    const m = /TCP:.* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    return m ? Number(m[1]) * 4 : 0;
  } catch {
    return 0;
  }
}

/** The soft open-file limit of this process (what bounds how many sockets it may open). */
export function openFileLimit() {
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    // not Linux
  }
  return 1024;
}

/** Samples the RSS of `pid` every `intervalMs` until stop(); peak and samples kept. */
export class RssSampler {
  constructor(pid, intervalMs = 200) {
    this.pid = pid;
    this.samples = [];
    this.peak = 0;
    this.kernelPeak = 0; // kernel TCP memory (all sockets on the host), KiB
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample() {
    const kib = rssKiB(this.pid);
    this.samples.push({ at: Date.now(), kib });
    if (kib > this.peak) this.peak = kib;
    const kernel = kernelTcpKiB();
    if (kernel > this.kernelPeak) this.kernelPeak = kernel;
    return kib;
  }

  stop() {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

/** GET /metrics (on the publish listener: it is not subject to the connection limits). */
export async function metrics(sidecar, { port = sidecar.publishPort || sidecar.port } = {}) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { connection: 'close' } });
  const text = await res.text();
  const out = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out[line.slice(0, space)] = Number(line.slice(space + 1));
  }
  return out;
}

/**
 * One HTTP request on a fresh connection from `localAddress` (the socket is closed
 * afterwards); resolves with {status, headers, body, ms} or rejects on a timeout/close.
 */
export function timedRequest(port, request, { localAddress = '127.0.0.1', timeoutMs = 5000 } = {}) {
  const started = performance.now();
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1', localAddress });
      let buf = Buffer.alloc(0);
      let done = false;
      const finish = (eof) => {
        if (done) return;
        let parsed = null;
        try {
          parsed = parseHttpResponse(buf, eof);
        } catch (err) {
          done = true;
          socket.destroy();
          reject(err);
          return;
        }
        if (parsed) {
          done = true;
          socket.destroy();
          resolve({ ...parsed.response, ms: performance.now() - started });
        } else if (eof) {
          done = true;
          reject(new Error(`connection closed before an answer (${buf.length} bytes)`));
        }
      };
      socket.on('connect', () => socket.write(request));
      socket.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        finish(false);
      });
      socket.on('end', () => finish(true));
      socket.on('close', () => finish(true));
      socket.on('error', (err) => {
        if (!done) {
          done = true;
          reject(err);
        }
      });
    }),
    timeoutMs,
    `an answer to ${JSON.stringify(request.split('\r\n')[0])}`,
  );
}

export const HEALTHZ = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n';

/**
 * GET /healthz from 127.0.0.1 every `intervalMs` (one at a time, each on a fresh
 * connection) until stop(); keeps every latency and every failure.
 */
export class HealthProbe {
  constructor(port, { intervalMs = 100, timeoutMs = 2000 } = {}) {
    this.latencies = [];
    this.failures = [];
    this.slow = []; // {at: ms since the start, ms} of answers slower than 50 ms
    this.started = Date.now();
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const next = Date.now() + intervalMs;
        try {
          const res = await timedRequest(port, HEALTHZ, { timeoutMs });
          if (res.status !== 200) this.failures.push(`status ${res.status}`);
          this.latencies.push(res.ms);
          if (res.ms > 50) this.slow.push({ at: Date.now() - this.started, ms: Math.round(res.ms) });
        } catch (err) {
          this.failures.push(err.message);
        }
        const wait = next - Date.now();
        if (wait > 0 && this.running) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    })();
  }

  async stop() {
    this.running = false;
    await this.loop;
    return this.stats();
  }

  stats() {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pick = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN);
    return {
      count: sorted.length,
      failures: this.failures,
      slow: this.slow,
      max: sorted.length ? sorted[sorted.length - 1] : NaN,
      p50: pick(0.5),
      p99: pick(0.99),
    };
  }
}

/**
 * A raw TCP connection from `localAddress` that records what happens to it: when it
 * connected, the bytes it got, when and how it ended. Reads everything (flowing) unless
 * `paused`, in which case nothing is read at all (the kernel buffers fill up).
 */
export class Conn {
  constructor(port, { localAddress = '127.0.0.2', paused = false } = {}) {
    this.socket = net.connect({ port, host: '127.0.0.1', localAddress });
    if (paused) this.socket.pause();
    this.startedAt = performance.now();
    this.connectedAt = null;
    this.firstByteSentAt = null;
    this.closedAt = null;
    this.error = null;
    this.received = Buffer.alloc(0);
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => {
        this.connectedAt = performance.now();
        resolve(this);
      });
      this.socket.once('error', reject);
    });
    this.connected.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.socket.on('close', () => {
        this.closedAt = performance.now();
        resolve(this);
      });
    });
    this.socket.on('data', (chunk) => {
      this.received = Buffer.concat([this.received, chunk]);
    });
    this.socket.on('error', (err) => {
      this.error = err;
    });
  }

  get isClosed() {
    return this.closedAt !== null;
  }

  write(bytes) {
    if (this.firstByteSentAt === null) this.firstByteSentAt = performance.now();
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** The first complete HTTP response received (null until there is one). */
  response() {
    return parseHttpResponse(this.received, this.isClosed)?.response ?? null;
  }

  /** Waits for an HTTP response (or the close). */
  async waitResponse(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = this.response();
      if (res) return res;
      if (this.isClosed) throw new Error(`closed without an answer (${this.received.length} bytes, ${this.error?.code ?? 'EOF'})`);
      if (Date.now() > deadline) throw new Error(`no answer within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  destroy() {
    this.socket.destroy();
  }
}

/**
 * Opens `count` Conns, `batch` at a time, each batch connected before the next starts.
 * With `settle` a connection that fails (reset before it was seen connected) is kept
 * instead of failing the call.
 */
export async function openMany(
  port,
  count,
  { localAddresses = ['127.0.0.2'], batch = 100, paused = false, settle = false } = {},
) {
  const conns = [];
  for (let i = 0; i < count; i += batch) {
    const group = [];
    for (let j = i; j < Math.min(count, i + batch); j++) {
      group.push(new Conn(port, { localAddress: localAddresses[j % localAddresses.length], paused }));
    }
    if (settle) await Promise.allSettled(group.map((c) => c.connected));
    else await Promise.all(group.map((c) => c.connected));
    conns.push(...group);
  }
  return conns;
}

/** Resolves with `promise`'s value, or with undefined after `ms` (the timer cleared either way). */
export async function orAfter(promise, ms) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

/** "12 / 34 / 56" from numbers, rounded. */
export function fmtMs(ms) {
  return Number.isFinite(ms) ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : 'n/a';
}

/** Prints rows [{attack, sent, limit, measured}] as a plain-text table. */
export function printTable(title, rows) {
  const cols = ['attack', 'sent', 'limit', 'measured'];
  const width = {};
  for (const c of cols) width[c] = Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length));
  const line = (r) => cols.map((c) => String(r[c] ?? '').padEnd(width[c])).join(' | ');
  const out = [title, line(Object.fromEntries(cols.map((c) => [c, c]))), cols.map((c) => '-'.repeat(width[c])).join('-|-')];
  for (const r of rows) out.push(line(r));
  console.log(out.join('\n'));
}

/**
 * A WebSocket handshake on a Conn (from its source address); resolves once the 101
 * head is in, the Conn keeping whatever followed it.
 */
export async function wsHandshake(conn, port, target, timeoutMs = 5000) {
  await conn.connected;
  conn.write(
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const end = conn.received.indexOf('\r\n\r\n');
    if (end >= 0) {
      const status = conn.received.subarray(0, end).toString('latin1').split(' ')[1];
      if (status !== '101') throw new Error(`WebSocket handshake answered ${status}`);
      conn.received = conn.received.subarray(end + 4);
      return conn;
    }
    if (conn.isClosed) throw new Error('closed during the WebSocket handshake');
    if (Date.now() > deadline) throw new Error(`no WebSocket handshake answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * A client that writes masked ping frames (125-byte payloads, the largest a control
 * frame may carry) as fast as the connection takes them and never reads a byte of the
 * pongs. When the server closes it, it connects again, until `durationMs` is over.
 */
export class PingFlooder {
  constructor(port, { localAddress = '127.0.0.2', durationMs = 10000, chunkBytes = 256 * 1024 } = {}) {
    this.port = port;
    this.localAddress = localAddress;
    this.until = Date.now() + durationMs;
    this.connections = 0;
    this.closedByServer = 0;
    this.bytesSent = 0; // taken by the kernel
    this.errors = [];
    this.current = null;
    this.stopped = false;
    const frame = Buffer.alloc(131);
    frame[0] = 0x89; // FIN + ping
    frame[1] = 0x80 | 125; // masked, 125 bytes
    // An all-zero mask key leaves the payload as is: 125 bytes of 'p'.
    frame.fill('p', 6);
    this.chunk = Buffer.concat(Array(Math.ceil(chunkBytes / frame.length)).fill(frame));
    this.timeUp = new Promise((resolve) => {
      this.timer = setTimeout(resolve, durationMs);
    });
    this.done = this.#run().finally(() => clearTimeout(this.timer));
  }

  async #run() {
    while (!this.stopped && Date.now() < this.until) {
      const conn = new Conn(this.port, { localAddress: this.localAddress });
      this.current = conn;
      this.connections += 1;
      try {
        await wsHandshake(conn, this.port, '/ws');
      } catch (err) {
        this.errors.push(err.message);
        conn.destroy();
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      conn.socket.pause(); // the pongs are never read from here on
      const socket = conn.socket;
      let queued = 0;
      while (!this.stopped && Date.now() < this.until && !conn.isClosed) {
        queued += this.chunk.length;
        const flushed = socket.write(this.chunk);
        if (!flushed) {
          await Promise.race([
            new Promise((resolve) => socket.once('drain', resolve)),
            conn.closed,
            this.timeUp,
          ]);
        }
      }
      this.bytesSent += Math.max(0, queued - socket.writableLength);
      if (conn.isClosed) this.closedByServer += 1;
      conn.destroy();
    }
  }

  async stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.current?.destroy();
    await this.done;
  }
}

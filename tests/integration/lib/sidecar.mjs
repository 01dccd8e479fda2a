// Starts and stops comet-sidecar for a test file, and the HTTP helpers every test uses
// (publish, poll, healthz). The binary comes from COMET_SIDECAR_BIN (CTest sets it to
// the built target) or build/sidecar/comet-sidecar at the top of the repository.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { withTimeout } from './async.mjs';
// Fails every test file with the setup instructions when node_modules is missing.
import './clients.mjs';
import { rawRequest } from './raw.mjs';

export * from './async.mjs';
export * from './raw.mjs';

const integrationDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const SIDECAR_BIN =
  process.env.COMET_SIDECAR_BIN || path.resolve(integrationDir, '../../build/sidecar/comet-sidecar');

// Whatever happens to the test process, no sidecar outlives it.
const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// Lines that mean a sanitizer found something even if the exit code says otherwise.
const SANITIZER_MARKERS = [/ERROR: AddressSanitizer/, /ERROR: LeakSanitizer/, /runtime error:/];

export class Sidecar {
  constructor(child, host, port, args) {
    this.child = child;
    this.host = host;
    this.port = port;
    this.args = args;
    this.stdout = '';
    this.stderr = '';
    this.exit = null; // {code, signal} once exited
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
      // A failed spawn (ENOENT, EACCES, ETXTBSY while the binary is being relinked) emits
      // 'error' and never 'exit'.
      child.on('error', (error) => {
        if (this.exit !== null || child.pid !== undefined) return;
        live.delete(child);
        this.exit = { code: null, signal: null, error };
        resolve(this.exit);
      });
    });
    this.stopped = null;
  }

  get url() {
    return `http://${this.host}:${this.port}`;
  }

  /** The internal publish listener (--publish-listen), where keyless publishing works. */
  get publishUrl() {
    return this.publishPort ? `http://${this.host}:${this.publishPort}` : this.url;
  }

  get wsUrl() {
    return `ws://${this.host}:${this.port}`;
  }

  /** True while the process runs. */
  get running() {
    return this.exit === null;
  }

  /**
   * SIGTERM, wait for the exit, and fail unless it exited 0 with a clean stderr
   * (ASan/LSan/UBSan make the exit non-zero and print their report there).
   * Safe to call twice; the second call reports the same outcome.
   */
  stop({ timeoutMs = 20000 } = {}) {
    if (this.stopped === null) this.stopped = this.#stop(timeoutMs);
    return this.stopped;
  }

  async #stop(timeoutMs) {
    const diedEarly = this.exit !== null;
    if (!diedEarly) this.child.kill('SIGTERM');
    let exit;
    try {
      exit = await withTimeout(this.exited, timeoutMs, 'comet-sidecar to exit after SIGTERM');
    } catch (err) {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`${err.message}; killed it.\n--- comet-sidecar stderr ---\n${this.stderr}`);
    }
    const problems = [];
    if (diedEarly) {
      problems.push(`it exited before stop() was called (code ${exit.code}, signal ${exit.signal}; crashed, or killed from outside?)`);
    }
    if (exit.code !== 0) problems.push(`exit code ${exit.code}${exit.signal ? `, signal ${exit.signal}` : ''}`);
    for (const marker of SANITIZER_MARKERS) {
      if (marker.test(this.stderr)) problems.push(`stderr matches ${marker}`);
    }
    if (problems.length > 0) {
      throw new Error(
        `comet-sidecar ${this.args.join(' ')}: ${problems.join('; ')}\n--- comet-sidecar stderr ---\n${this.stderr}`,
      );
    }
    return exit;
  }

  /** Teardown of last resort (the test already failed). */
  kill() {
    if (this.exit === null) this.child.kill('SIGKILL');
  }
}

/**
 * Starts comet-sidecar on a free loopback port with `flags` and waits for its
 * "listening" line. Pair every call with `after(() => sidecar.stop())`.
 */
export async function startSidecar(flags = [], { readyTimeoutMs = 20000, env = {} } = {}) {
  if (!existsSync(SIDECAR_BIN)) {
    throw new Error(
      `comet-sidecar binary not found at ${SIDECAR_BIN}: build it (cmake --build build) or set COMET_SIDECAR_BIN`,
    );
  }
  const args = ['--listen', '127.0.0.1:0'];
  // The publish listener on a free port too (tests run in parallel); publish() uses it.
  if (!flags.includes('--publish-listen')) args.push('--publish-listen', '127.0.0.1:0');
  // COMET_TEST_LOG_LEVEL=info (or debug) shows the sidecar's own log in failure reports.
  if (!flags.includes('--log-level')) args.push('--log-level', process.env.COMET_TEST_LOG_LEVEL || 'warn');
  args.push(...flags);
  // comet-sidecar reads COMET_* variables as settings (and refuses unknown ones, such as
  // COMET_SIDECAR_BIN): only the flags and `env` given here configure it.
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('COMET_')));
  const child = spawn(SIDECAR_BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...childEnv, ...env },
  });
  live.add(child);
  const sidecar = new Sidecar(child, '127.0.0.1', 0, args);
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    sidecar.stderr += chunk;
  });
  child.stdout.setEncoding('utf8');

  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      sidecar.stdout += chunk;
      const m = /listening on (\S+):(\d+) /.exec(sidecar.stdout);
      if (m && sidecar.port === 0) {
        sidecar.port = Number(m[2]);
        const p = /publish listener on (\S+):(\d+)/.exec(sidecar.stdout);
        sidecar.publishPort = p ? Number(p[2]) : 0;
        resolve();
      }
    });
    sidecar.exited.then((exit) =>
      reject(
        new Error(
          exit.error
            ? `cannot start ${SIDECAR_BIN}: ${exit.error.message}`
            : `comet-sidecar exited during startup (code ${exit.code}, signal ${exit.signal})`,
        ),
      ),
    );
  });
  try {
    await withTimeout(ready, readyTimeoutMs, 'comet-sidecar to print its "listening" line');
  } catch (err) {
    sidecar.kill();
    await sidecar.exited;
    throw new Error(`${err.message}\nargs: ${args.join(' ')}\n--- stdout ---\n${sidecar.stdout}\n--- stderr ---\n${sidecar.stderr}`);
  }
  return sidecar;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * POST /pub/<channel>, on the publish listener unless `publicListener`. Returns
 * {status, headers, text, json}; `data` is the body (string or Buffer). `event` becomes ?event=.
 */
export async function publish(
  sidecar,
  channel,
  data,
  { event, headers = {}, query = {}, method = 'POST', publicListener = false } = {},
) {
  const url = new URL(`/pub/${channel}`, publicListener ? sidecar.url : sidecar.publishUrl);
  if (event !== undefined) url.searchParams.set('event', event);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const res = await fetch(url, { method, body: data, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: parseJson(text) };
}

/** Publishes and asserts 200; returns {ch, id, epoch}. */
export async function publishOk(sidecar, channel, data, options) {
  const res = await publish(sidecar, channel, data, options);
  assert.equal(res.status, 200, `publish to ${channel} failed: ${res.status} ${res.text}`);
  assert.equal(res.json.ch, channel);
  return res.json;
}

/** Publishes `items` one after another (in order); returns the answers. */
export async function publishMany(sidecar, channel, items, options) {
  const out = [];
  for (const data of items) out.push(await publishOk(sidecar, channel, data, options));
  return out;
}

/** GET /poll with query `params`; returns {status, headers, text, json}. */
export async function poll(sidecar, params, { headers = {}, signal } = {}) {
  const url = new URL('/poll', sidecar.url);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, { headers, signal });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: parseJson(text) };
}

/** The current cursor of `channels` (a wait=0 poll with no cursor starts at the head). */
export async function headCursor(sidecar, channels) {
  const res = await poll(sidecar, { ch: channels, wait: '0' });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.messages, []);
  return res.json.cursor;
}

/**
 * GET /healthz on a fresh connection that is closed afterwards (so the answer's
 * connection count is not inflated by idle pooled fetch connections), asserting 200
 * and status ok. Returns the parsed body.
 */
export async function healthz(sidecar) {
  const res = await rawRequest(sidecar.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, 200, res.body);
  const body = res.json;
  assert.equal(body.status, 'ok');
  return body;
}

/** A channel name unique within the test process. */
let channelCounter = 0;
export function uniqueChannel(prefix = 'ch') {
  channelCounter += 1;
  return `${prefix}-${process.pid}-${channelCounter}`;
}

/** Parses "ch@EPOCH.ID,..." into {ch: {epoch, id}}. */
export function parseCursor(cursor) {
  const out = {};
  if (!cursor) return out;
  for (const part of cursor.split(',')) {
    const at = part.lastIndexOf('@');
    const position = part.slice(at + 1);
    const dot = position.lastIndexOf('.');
    out[part.slice(0, at)] = { epoch: position.slice(0, dot), id: Number(position.slice(dot + 1)) };
  }
  return out;
}

/** Checks the envelope fields of a published message against what publish answered. */
export function assertEnvelope(envelope, { ch, id, epoch, data, event, prev = id - 1 }) {
  const expected = { ch, id, prev, epoch };
  if (event !== undefined) expected.event = event;
  expected.data = data;
  assert.deepEqual(envelope, expected);
}

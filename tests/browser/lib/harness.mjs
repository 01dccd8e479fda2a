// What every browser test needs: a comet-sidecar on a free loopback port (started and
// stopped by the test, exit status and sanitizer output checked), headless Chromium
// through playwright-core (the system's /usr/bin/chromium, a fresh profile, no
// download), publishing, /healthz, bounded waits, and a private redis-server.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { makeCertificate } from '../../integration/lib/certificates.mjs';

export const browserDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(browserDir, '../..');
export const SIDECAR_BIN = process.env.COMET_SIDECAR_BIN || path.join(repoRoot, 'build/sidecar/comet-sidecar');
export const CHROMIUM_BIN = process.env.COMET_CHROMIUM_BIN || '/usr/bin/chromium';
export const DEMO_DIR = path.join(repoRoot, 'deploy/demo');
export const COMET_JS = path.join(repoRoot, 'js-client/comet.js');
// The pages load what ships: the sidecar's built-in /comet.js, the minified build.
// COMET_BROWSER_JS=readable serves js-client/comet.js instead (readable stack traces).
const JS_CLIENT_FLAGS = process.env.COMET_BROWSER_JS === 'readable' ? ['--js-client', COMET_JS] : [];
export const SCREENSHOT_DIR = path.join(repoRoot, 'tests/artifacts/screenshots');

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (err) {
  throw new Error(
    `browser test dependency 'playwright-core' is not installed (${err.code ?? err.message}).\n` +
      'Run the setup first, from the repository root:  npm ci --prefix tests/browser',
  );
}

// ---------------------------------------------------------------------------------
// Waiting

/** Resolves with `promise`, or rejects after `ms` naming what was awaited. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `fn` until it returns something truthy (returned); fails after `timeoutMs`. */
export async function waitUntil(fn, { timeoutMs = 15000, intervalMs = 25, what = 'a condition', detail } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) {
      const extra = detail ? `; ${await detail()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${extra}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

// ---------------------------------------------------------------------------------
// Processes

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

/** A loopback port that was free a moment ago. */
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

const SANITIZER_MARKERS = [/ERROR: AddressSanitizer/, /ERROR: LeakSanitizer/, /runtime error:/];

/**
 * Starts comet-sidecar serving the demo page and comet.js. `port` 0 picks a free one
 * (read from its "listening" line). Returns {port, url, stop(), kill(), stderr}.
 * stop() sends SIGTERM and fails unless it exits 0 with a clean stderr.
 */
// Public URL -> the same sidecar's publish listener, so tests publish with the URL they
// know (a restarted sidecar gets a new publish port; the entry is replaced).
const publishUrls = new Map();
const publishBase = (baseUrl) => publishUrls.get(baseUrl) ?? baseUrl;

/** A self-signed certificate for 127.0.0.1 and localhost in a temp dir of its own. */
function makeTestCertificate() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-browser-tls-'));
  return { dir, ...makeCertificate(dir, 'localhost') };
}

export async function startSidecar(flags = [], { port = 0, staticDir = DEMO_DIR, tls = false } = {}) {
  if (!existsSync(SIDECAR_BIN)) {
    throw new Error(`comet-sidecar not found at ${SIDECAR_BIN}: build it (cmake --build build) or set COMET_SIDECAR_BIN`);
  }
  const args = ['--listen', `127.0.0.1:${port}`, '--log-level', 'warn', '--static-dir', staticDir, ...JS_CLIENT_FLAGS];
  // TLS: the page and every transport over https/wss (the browser context ignores the
  // self-signed certificate's errors).
  const certificate = tls ? makeTestCertificate() : null;
  if (certificate) args.push('--tls-cert', certificate.cert, '--tls-key', certificate.key);
  // Keyless publishing happens on the internal publish listener (a free port here).
  if (!flags.includes('--publish-listen')) args.push('--publish-listen', '127.0.0.1:0');
  args.push(...flags);
  // The sidecar reads COMET_* variables as settings and refuses unknown ones.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COMET_')));
  const child = spawn(SIDECAR_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  live.add(child);
  const sidecar = {
    args,
    port: 0,
    stdout: '',
    stderr: '',
    exit: null,
    tls,
    get url() {
      return `${tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
    },
  };
  sidecar.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      if (certificate) rmSync(certificate.dir, { recursive: true, force: true });
      sidecar.exit = { code, signal };
      resolve(sidecar.exit);
    });
    child.on('error', (error) => {
      if (child.pid !== undefined) return;
      live.delete(child);
      sidecar.exit = { code: null, signal: null, error };
      resolve(sidecar.exit);
    });
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => {
    sidecar.stderr += c;
  });
  child.stdout.setEncoding('utf8');
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (c) => {
      sidecar.stdout += c;
      const m = /listening on \S+:(\d+) /.exec(sidecar.stdout);
      if (m && !sidecar.port) {
        sidecar.port = Number(m[1]);
        const p = /publish listener on \S+:(\d+)/.exec(sidecar.stdout);
        if (p) publishUrls.set(sidecar.url, `http://127.0.0.1:${p[1]}`);
        resolve();
      }
    });
    sidecar.exited.then((e) => reject(new Error(`comet-sidecar exited during startup (${JSON.stringify(e)})\n${sidecar.stderr}`)));
  });
  try {
    await withTimeout(ready, 20000, 'comet-sidecar to listen');
  } catch (err) {
    child.kill('SIGKILL');
    await sidecar.exited;
    throw err;
  }
  sidecar.kill = () => {
    if (sidecar.exit === null) child.kill('SIGKILL');
    return sidecar.exited;
  };
  let stopped = null;
  sidecar.stop = () => (stopped ??= stopSidecar(sidecar, child));
  return sidecar;
}

async function stopSidecar(sidecar, child) {
  const diedEarly = sidecar.exit !== null;
  if (!diedEarly) child.kill('SIGTERM');
  let exit;
  try {
    exit = await withTimeout(sidecar.exited, 20000, 'comet-sidecar to exit after SIGTERM');
  } catch (err) {
    child.kill('SIGKILL');
    await sidecar.exited;
    throw new Error(`${err.message}\n--- stderr ---\n${sidecar.stderr}`);
  }
  const problems = [];
  if (diedEarly) problems.push('it exited before stop() (crash?)');
  if (exit.code !== 0) problems.push(`exit code ${exit.code}${exit.signal ? ` signal ${exit.signal}` : ''}`);
  for (const m of SANITIZER_MARKERS) if (m.test(sidecar.stderr)) problems.push(`stderr matches ${m}`);
  if (problems.length) throw new Error(`comet-sidecar ${sidecar.args.join(' ')}: ${problems.join('; ')}\n--- stderr ---\n${sidecar.stderr}`);
  return exit;
}

/** A private redis-server on a free port (no persistence); stop() kills it. */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-browser-redis-'));
  const child = spawn(
    process.env.REDIS_SERVER_BIN || 'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.add(child);
  let out = '';
  const exited = new Promise((resolve) => child.on('exit', () => {
    live.delete(child);
    resolve();
  }));
  await withTimeout(
    new Promise((resolve, reject) => {
      child.stdout.on('data', (c) => {
        out += c;
        if (/Ready to accept connections/.test(out)) resolve();
      });
      child.on('error', reject);
      exited.then(() => reject(new Error(`redis-server exited: ${out}`)));
    }),
    15000,
    'redis-server to start',
  );
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------
// HTTP

/** POST /pub/<ch> with `data`; returns the JSON answer (asserts 200). */
export async function publish(baseUrl, ch, data) {
  const res = await fetch(`${publishBase(baseUrl)}/pub/${encodeURIComponent(ch)}`, { method: 'POST', body: data });
  const text = await res.text();
  assert.equal(res.status, 200, `publish to ${ch}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/**
 * Publishes `n` messages to each channel, the channels interleaved; returns {ch: [answers]}.
 * `pad`: about that many more bytes of JSON-like text per message (compressible, as chat
 * and dashboard messages are).
 */
export async function publishInterleaved(baseUrl, channels, n, prefix = 'm', { pad = 0 } = {}) {
  const out = Object.fromEntries(channels.map((ch) => [ch, []]));
  const filler = (i) => {
    let text = '';
    for (let k = 0; text.length < pad; k++) text += `{"user":"u${(i * 7 + k) % 97}","room":"lobby","n":${k}},`;
    return text.slice(0, pad);
  };
  for (let i = 1; i <= n; i++) {
    for (const ch of channels) {
      const data = `${prefix} ${ch} #${i} <&>\u2028"${filler(i)}`;
      const answer = await publish(baseUrl, ch, data);
      out[ch].push({ ...answer, data });
    }
  }
  return out;
}

/**
 * Publishes like publish(), retrying while the sidecar is down or degraded (connection
 * refused, 503) — for restart tests.
 */
export async function publishRetrying(baseUrl, ch, data, { timeoutMs = 30000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${publishBase(baseUrl)}/pub/${encodeURIComponent(ch)}`, { method: 'POST', body: data });
      const text = await res.text();
      if (res.status === 200) return JSON.parse(text);
      if (res.status !== 503) throw new Error(`publish to ${ch}: ${res.status} ${text}`);
    } catch (err) {
      if (!/fetch failed|ECONNREFUSED|ECONNRESET|socket/i.test(String(err.message) + String(err.cause?.code))) throw err;
    }
    if (Date.now() > deadline) throw new Error(`publish to ${ch} kept failing for ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** GET /healthz on a fresh connection (not counted as an idle pooled one). */
export async function healthz(baseUrl) {
  const res = await fetch(`${baseUrl}/healthz`, { headers: { Connection: 'close' } });
  assert.equal(res.status, 200);
  return res.json();
}

// ---------------------------------------------------------------------------------
// Chromium

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-features=LocalNetworkAccessChecks',
];

/** Headless Chromium with a fresh profile (playwright-core makes a temporary one). */
export async function launchBrowser() {
  if (!existsSync(CHROMIUM_BIN)) throw new Error(`Chromium not found at ${CHROMIUM_BIN} (apt-get install chromium, or set COMET_CHROMIUM_BIN)`);
  return chromium.launch({ executablePath: CHROMIUM_BIN, headless: true, args: CHROMIUM_ARGS, timeout: 30000 });
}

/**
 * Opens the demo page (`query`: its options) in `context` and records the page's
 * console errors and uncaught exceptions in page.problems.
 */
export async function openDemo(context, baseUrl, query = {}, { beforeLoad } = {}) {
  const page = await context.newPage();
  if (beforeLoad) await beforeLoad(page);
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
    if (process.env.COMET_BROWSER_DEBUG) console.log(`[page] ${msg.text()}`);
  });
  const qs = new URLSearchParams(query).toString();
  await page.goto(`${baseUrl}/index.html${qs ? `?${qs}` : ''}`, { waitUntil: 'load', timeout: 20000 });
  return page;
}

/** What the demo page recorded (window.cometDemo), without the connection object. */
export function demoState(page) {
  return page.evaluate(() => {
    const d = window.cometDemo;
    return {
      received: d.received,
      resets: d.resets,
      states: d.states,
      errors: d.errors,
      transports: d.transports,
      state: d.conn.state,
      transport: d.conn.transport,
      leader: d.conn.isLeader,
    };
  });
}

/** Waits until the page's connection is open (on `transport` if given). */
export async function waitOpen(page, transport, timeoutMs = 20000) {
  await waitUntil(
    () => page.evaluate((t) => {
      const c = window.cometDemo && window.cometDemo.conn;
      return !!c && c.state === 'open' && (!t || c.transport === t);
    }, transport),
    { timeoutMs, what: `the page to be open${transport ? ` on ${transport}` : ''}`, detail: async () => JSON.stringify(await demoSummary(page)) },
  );
}

/** Waits until every channel of the page has a known position (its subscription is live). */
export async function waitSubscribed(page, channels, timeoutMs = 20000) {
  await waitUntil(
    () => page.evaluate((chs) => {
      const c = window.cometDemo.conn;
      return chs.every((ch) => c.pos[ch]);
    }, channels),
    { timeoutMs, what: `subscriptions to ${channels.join(', ')} to be live`, detail: async () => JSON.stringify(await demoSummary(page)) },
  );
}

/** A short description of the page's state for failure messages. */
export async function demoSummary(page) {
  try {
    const s = await demoState(page);
    const per = {};
    for (const m of s.received) per[m.ch] = (per[m.ch] ?? 0) + 1;
    return { state: s.state, transport: s.transport, leader: s.leader, received: per, transports: s.transports, errors: s.errors.slice(-5), resets: s.resets.length };
  } catch (err) {
    return { unavailable: err.message };
  }
}

/** Waits until the page has received `count` messages (all channels together). */
export async function waitReceived(page, count, timeoutMs = 30000) {
  await waitUntil(() => page.evaluate((n) => window.cometDemo.received.length >= n, count), {
    timeoutMs,
    intervalMs: 50,
    what: `${count} messages on the page`,
    detail: async () => JSON.stringify(await demoSummary(page)),
  });
}

/**
 * Asserts the page received exactly `expected` ({ch: [{id, epoch, data}]}) per channel:
 * each message once, in id order, with the right data. Returns {ch: count}.
 */
export function assertExactlyOnce(received, expected, label = 'page') {
  const counts = {};
  for (const [ch, want] of Object.entries(expected)) {
    const got = received.filter((m) => m.ch === ch);
    const gotIds = got.map((m) => m.id);
    const wantIds = want.map((m) => m.id);
    assert.deepEqual(gotIds, wantIds, `${label}: ids of ${ch} (got ${got.length}, want ${want.length}): ${compact(gotIds)}`);
    for (let i = 0; i < want.length; i++) {
      assert.equal(got[i].data, want[i].data, `${label}: data of ${ch} #${want[i].id}`);
      assert.equal(got[i].epoch, want[i].epoch, `${label}: epoch of ${ch} #${want[i].id}`);
    }
    counts[ch] = got.length;
  }
  const others = received.filter((m) => !(m.ch in expected));
  assert.equal(others.length, 0, `${label}: messages of unexpected channels`);
  return counts;
}

/** "1-200,205" */
export function compact(ids) {
  const out = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    out.push(i === j ? `${ids[i]}` : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return path.relative(repoRoot, file);
}

/** Runs cleanups in reverse order; throws the first error after running all. */
export async function runCleanups(cleanups) {
  const errors = [];
  while (cleanups.length) {
    try {
      await cleanups.pop()();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('\n'));
}

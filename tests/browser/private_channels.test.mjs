// Private channels end to end: a PHP page (PHP's built-in server, php-client's
// comet_token()) hands comet.js a token signed with the secret the sidecar reads from
// --token-secret-file, and the page receives a private channel over every transport
// headless Chromium can run; the same page without a token gets an 'error' event naming
// the channel with status 401 and never a message of it.
//
// One sidecar, one `php -S` (fixtures/private_app) and one Chromium for the whole file.
// The page is cross-origin to the sidecar (its own port), as when the app and the
// sidecar are separate sites. Two transports need the page and the sidecar on one
// origin: the streamed documents of iframe and htmlfile call `parent.<callback>`, which
// a cross-origin frame may not do (and Chromium no longer lets document.domain relax
// that), so those run behind a small same-origin front (*.php to PHP, the rest to the
// sidecar), the usual deployment behind one reverse proxy. A cross-origin iframe is
// still checked for the refusal, which comet.js learns with a /poll?wait=0 probe.
//
// Every page subscribes to the private channel and to a public "marker" channel: once a
// marker published after the private messages has arrived, the page has had its chance
// to receive (or wrongly receive) them, so no test sleeps. JSONP is the exception: the
// sidecar refuses the whole request and a refused <script> shows no status, so the
// JSONP page subscribes to the private channel only and the test watches the refused
// requests (their 401s, which Playwright sees and the page cannot) instead.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  browserDir,
  freePort,
  launchBrowser,
  publish,
  runCleanups,
  startSidecar,
  waitUntil,
  withTimeout,
} from './lib/harness.mjs';

const APP_DIR = path.join(browserDir, 'fixtures/private_app');
const MESSAGES = 5;
const WAIT_MS = 15000;

// ---------------------------------------------------------------------------------
// The PHP app and the same-origin front

/** `php -S` on the fixture app, in its own process group (killed with its workers). */
async function startPhp(secret, sessionDir) {
  const port = await freePort();
  // Only the secret of the COMET_* settings: nothing else of the caller's environment.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COMET_')));
  env.COMET_TOKEN_SECRET = secret;
  env.PHP_CLI_SERVER_WORKERS = '4';
  const child = spawn('php', ['-d', `session.save_path=${sessionDir}`, '-S', `127.0.0.1:${port}`, '-t', APP_DIR], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
    env,
  });
  let stderr = '';
  let spawnError = null;
  child.on('error', (err) => (spawnError = err));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => (stderr += c));
  const killGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // gone
    }
  };
  const onExit = () => killGroup('SIGKILL');
  process.on('exit', onExit);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (spawnError) throw new Error(`cannot start php (${spawnError.message}): the PHP CLI is needed`);
      try {
        return (await fetch(`${url}/token.php`)).ok;
      } catch {
        return false;
      }
    },
    { what: `php -S on port ${port}`, detail: () => stderr },
  );
  return {
    port,
    url,
    stderr: () => stderr,
    async stop() {
      killGroup('SIGTERM');
      await withTimeout(exited, 5000, 'php -S to exit').catch(() => killGroup('SIGKILL'));
      process.off('exit', onExit);
      child.stderr.destroy();
    },
  };
}

/**
 * One origin for the PHP page and the sidecar: *.php goes to PHP, everything else to
 * the sidecar; responses stream through unbuffered. (No WebSocket: not needed here.)
 */
async function startFront(phpPort, sidecarPort) {
  const agent = new http.Agent({ keepAlive: false });
  const server = http.createServer((req, res) => {
    const port = /^\/[^?]*\.php(\?|$)/.test(req.url) ? phpPort : sidecarPort;
    const headers = { ...req.headers };
    delete headers.connection;
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent }, (up) => {
      const out = { ...up.headers };
      delete out.connection;
      delete out['transfer-encoding'];
      res.writeHead(up.statusCode, out);
      res.flushHeaders();
      up.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
    res.on('close', () => upstream.destroy());
  });
  server.on('upgrade', (req, socket) => socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      agent.destroy();
    },
  };
}

// ---------------------------------------------------------------------------------
// The cases

// Every transport comet.js has; all of them run in Chromium. `sameOrigin`: the page is
// served through the front (iframe documents call into their parent).
const TRANSPORTS = [
  { transport: 'websocket' },
  { transport: 'sse' },
  { transport: 'xhr-stream' },
  { transport: 'iframe', sameOrigin: true },
  // An iframe in Chromium (the ActiveX htmlfile document exists only on old IE).
  { transport: 'htmlfile', sameOrigin: true },
  // multipart/x-mixed-replace and application/x-dom-event-stream, read with fetch.
  // (comet.js hands a multipart part over only when the next one begins, so its open
  // notice and each message wait for the next heartbeat: --heartbeat 1s keeps it short.)
  { transport: 'multipart' },
  { transport: 'dom-event-stream' },
  { transport: 'long-poll' },
  { transport: 'jsonp' },
  { transport: 'poll' },
];

let seq = 0;
const runId = Date.now().toString(36);
const channelsFor = (tag) => {
  seq += 1;
  return { ch: `private:user/7/${tag}-${runId}-${seq}`, marker: `marker-${tag}-${runId}-${seq}` };
};

describe('private channels: a PHP page with comet_token(), headless Chromium', () => {
  const cleanups = [];
  const results = [];
  let secretFile;
  let sidecar;
  let php;
  let front;
  let browser;

  before(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-private-app-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const secret = randomBytes(32).toString('hex');
    secretFile = path.join(dir, 'token-secret');
    // With a trailing newline, as `echo secret > file` writes it: the sidecar drops it.
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    const sessionDir = path.join(dir, 'sessions');
    mkdirSync(sessionDir);

    sidecar = await startSidecar(['--heartbeat', '1s', '--workers', '2', '--token-secret-file', secretFile]);
    cleanups.push(() => sidecar.stop());
    php = await startPhp(secret, sessionDir);
    cleanups.push(() => php.stop());
    front = await startFront(php.port, sidecar.port);
    cleanups.push(() => front.stop());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
  });

  after(async () => {
    await runCleanups(cleanups);
    for (const r of results) console.log(r);
  });

  /** Opens page.php for `ch` (+ `marker`) on `transport`; returns {page, context}. */
  async function openPage({ transport, ch, marker = '', token, sameOrigin = false }) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.problems = [];
    page.statuses = []; // [{url, status}] of the sidecar's /poll and /stream answers
    page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (process.env.COMET_BROWSER_DEBUG) console.log(`[page ${transport}] ${msg.text()}`);
    });
    page.on('response', (r) => {
      if (/\/(poll|stream|sse)\?/.test(r.url())) page.statuses.push({ url: r.url(), status: r.status() });
    });
    page.failed = []; // [{url, error, sentAt}] of the sidecar requests that failed in the browser
    const sentAt = new WeakMap();
    page.on('request', (r) => sentAt.set(r, Date.now()));
    page.on('requestfailed', (r) => {
      if (/\/(poll|stream|sse)\?/.test(r.url())) page.failed.push({ url: r.url(), error: r.failure()?.errorText, sentAt: sentAt.get(r) });
    });
    const base = sameOrigin ? front.url : php.url;
    const query = new URLSearchParams({ server: sameOrigin ? '' : sidecar.url, ch, marker, transport, token });
    if (process.env.COMET_BROWSER_DEBUG) query.set('debug', '1');
    // Not 'load': a JSONP long-poll is a <script> the page inserts at once, and 'load'
    // would wait for it to be answered (a held poll: up to --poll-timeout).
    await page.goto(`${base}/page.php?${query}`, { waitUntil: 'domcontentloaded', timeout: 20000 });
    await page.waitForFunction(() => window.privateTest !== undefined, null, { timeout: 20000 });
    const fatal = await page.evaluate(() => window.privateTest && window.privateTest.fatal);
    assert.equal(fatal, null, 'the page started');
    return { page, context };
  }

  const state = (page) =>
    page.evaluate(() => {
      const t = window.privateTest;
      return {
        received: t.received,
        errors: t.errors,
        subscribed: t.subscribed,
        transports: t.transports,
        state: t.conn.state,
        tokenCalls: t.tokenCalls,
      };
    });

  const summary = async (page) => {
    const s = await state(page);
    return JSON.stringify({ ...s, received: s.received.length, statuses: page.statuses.slice(-4) });
  };

  /** Waits until `predicate(state)` holds; returns that state. */
  async function waitFor(page, what, predicate) {
    return waitUntil(
      async () => {
        const s = await state(page);
        return predicate(s) ? s : null;
      },
      { timeoutMs: WAIT_MS, what, detail: () => summary(page) },
    );
  }

  /** Publishes MESSAGES messages to `ch`, then one to `marker`; returns the answers. */
  async function publishAll(ch, marker, label) {
    const sent = [];
    for (let i = 1; i <= MESSAGES; i++) {
      const data = `${label} secret #${i} <&>"`;
      sent.push({ ...(await publish(sidecar.url, ch, data)), data });
    }
    if (marker) await publish(sidecar.url, marker, `${label} marker`);
    return sent;
  }

  /** With a token: every message of the private channel arrives once, in order. */
  async function delivers({ transport, token = '1', sameOrigin = false, label = transport }) {
    const { ch, marker } = channelsFor(transport);
    const started = Date.now();
    const { page, context } = await openPage({ transport, ch, marker, token, sameOrigin });
    try {
      await waitFor(page, `${label}: both subscriptions live`, (s) => s.subscribed[ch] && s.subscribed[marker]);
      const sent = await publishAll(ch, marker, label);
      const s = await waitFor(
        page,
        `${label}: ${MESSAGES} private messages and the marker published after them`,
        (x) => x.received.filter((m) => m.ch === ch).length >= MESSAGES && x.received.some((m) => m.ch === marker),
      );
      const got = s.received.filter((m) => m.ch === ch);
      assert.deepEqual(got.map((m) => m.id), sent.map((m) => m.id), `${label}: ids of ${ch}`);
      assert.deepEqual(got.map((m) => m.data), sent.map((m) => m.data), `${label}: data of ${ch}`);
      assert.ok(got.every((m) => m.epoch === sent[0].epoch), `${label}: epochs`);
      assert.deepEqual(s.errors, [], `${label}: no 'error' event`);
      assert.deepEqual(s.transports, [transport], `${label}: only ${transport} was used`);
      assert.deepEqual(page.problems, []);
      if (token === 'fn') assert.ok(s.tokenCalls >= 1, 'the token function was called');
      results.push(
        `${label}: token ${token === 'fn' ? 'function (token.php)' : 'embedded (comet_token)'} -> delivered ` +
          `${got.length}/${MESSAGES} once, in order${token === 'fn' ? `, token function called ${s.tokenCalls}x` : ''} ` +
          `(${Date.now() - started} ms)`,
      );
    } finally {
      await context.close();
    }
  }

  /** Without a token: an 'error' event names the channel with 401; nothing of it arrives. */
  async function refuses({ transport, sameOrigin = false, label = transport }) {
    const { ch, marker } = channelsFor(transport);
    const started = Date.now();
    const { page, context } = await openPage({ transport, ch, marker, token: '0', sameOrigin });
    try {
      const before = await waitFor(page, `${label}: the refusal of ${ch}`, (s) => s.errors.some((e) => e.channel));
      const refusal = before.errors.find((e) => e.channel);
      assert.equal(refusal.channel, ch);
      assert.equal(refusal.status, 401);
      assert.equal(refusal.code, 'unauthorized');
      await waitFor(page, `${label}: the marker subscription live`, (s) => s.subscribed[marker]);
      await publishAll(ch, marker, label);
      const s = await waitFor(page, `${label}: the marker published after the private messages`, (x) =>
        x.received.some((m) => m.ch === marker),
      );
      assert.deepEqual(s.received.filter((m) => m.ch !== marker), [], `${label}: nothing of ${ch}`);
      assert.equal(s.subscribed[ch], undefined, `${label}: no position for ${ch}`);
      assert.equal(s.errors.filter((e) => e.channel).length, 1, `${label}: the refusal is reported once`);
      assert.deepEqual(s.transports, [transport], `${label}: a refusal does not move down the ladder`);
      assert.equal(s.state, 'open');
      assert.deepEqual(page.problems, []);
      results.push(
        `${label}: no token -> 'error' {channel, status ${refusal.status}, code ${refusal.code}}, ` +
          `0 of ${MESSAGES} delivered, the public marker delivered (${Date.now() - started} ms)`,
      );
    } finally {
      await context.close();
    }
  }

  test('the sidecar takes comet_token() from PHP (secret from --token-secret-file)', async () => {
    const ch = `private:user/7/direct-${runId}`;
    const token = await (await fetch(`${php.url}/token.php`)).text();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const ok = await fetch(`${sidecar.url}/poll?wait=0&ch=${ch}&token=${token}`);
    assert.equal(ok.status, 200, await ok.text());
    const none = await fetch(`${sidecar.url}/poll?wait=0&ch=${ch}`);
    assert.equal(none.status, 401);
    assert.equal((await none.json()).ch, ch);
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    const bad = await fetch(`${sidecar.url}/poll?wait=0&ch=${ch}&token=${tampered}`);
    assert.equal(bad.status, 403);
    const other = await fetch(`${sidecar.url}/poll?wait=0&ch=private:user/8/x&token=${token}`);
    assert.equal(other.status, 403, 'the token covers user 7 only');
  });

  for (const c of TRANSPORTS) {
    const where = c.sameOrigin ? ' (same origin, behind the front)' : ' (cross-origin)';
    test(`${c.transport}${where}: with comet_token() the private channel arrives, each message once, in order`, () =>
      delivers(c));
    if (c.transport === 'jsonp') continue;
    test(`${c.transport}${where}: without a token, an 'error' event (401) and nothing of the channel`, () => refuses(c));
  }

  test('iframe (cross-origin): without a token the refusal is still reported (a /poll probe)', async () => {
    // A cross-origin iframe's error body is out of the page's reach, and such an iframe
    // cannot deliver anything here at all (parent.<callback> is cross-origin), so only
    // the refusal is checked: comet.js asks /poll?wait=0 why the stream failed.
    const { ch, marker } = channelsFor('iframe-x');
    const { page, context } = await openPage({ transport: 'iframe', ch, marker, token: '0' });
    try {
      const s = await waitFor(page, `the refusal of ${ch}`, (x) => x.errors.some((e) => e.channel));
      const refusal = s.errors.find((e) => e.channel);
      assert.deepEqual([refusal.channel, refusal.status, refusal.code], [ch, 401, 'unauthorized']);
      assert.deepEqual(s.received, []);
      results.push(`iframe (cross-origin): no token -> 'error' {channel, status ${refusal.status}, code ${refusal.code}}`);
    } finally {
      await context.close();
    }
  });

  test('jsonp (cross-origin): without a token nothing of the channel arrives (refusals are failed script loads)', async () => {
    // The sidecar answers a refused JSONP request with 401 and a JSON error body like
    // any /poll, but a <script> cannot read statuses, and Chromium's opaque-response
    // blocking (ORB) drops that cross-origin JSON answer before anyone sees it (not even
    // the DevTools protocol gets its status): comet.js sees a failed load (no
    // `channel`, no `status`) and tries again with backoff. The test replays a refused
    // request from Node to see the 401, and waits for a request made after the
    // publishes to fail too: the messages were never handed out.
    const { ch } = channelsFor('jsonp');
    const started = Date.now();
    const { page, context } = await openPage({ transport: 'jsonp', ch, token: '0' });
    try {
      const refused = () => page.failed.filter((r) => /callback=/.test(r.url));
      await waitUntil(() => refused().length > 0, { timeoutMs: WAIT_MS, what: 'a failed JSONP request', detail: () => summary(page) });
      await publishAll(ch, '', 'jsonp');
      const published = Date.now();
      const last = await waitUntil(() => refused().find((r) => r.sentAt > published), {
        timeoutMs: WAIT_MS,
        what: 'a JSONP request sent after the publishes, failed',
        detail: () => summary(page),
      });
      const replay = await fetch(last.url);
      const body = await replay.json();
      assert.equal(replay.status, 401, 'the page\'s JSONP request, replayed');
      assert.equal(body.ch, ch);
      const s = await state(page);
      assert.deepEqual(s.received, [], 'nothing of the channel');
      assert.equal(s.subscribed[ch], undefined);
      assert.ok(s.errors.length > 0, 'the failed loads are reported');
      assert.ok(s.errors.every((e) => e.channel === null && e.status === null), `no status visible: ${JSON.stringify(s.errors)}`);
      assert.deepEqual(page.statuses.filter((r) => /callback=/.test(r.url)), [], 'no JSONP answer reached the page');
      assert.deepEqual(page.problems, []);
      results.push(
        `jsonp: no token -> ${refused().length} JSONP requests failed in the browser (${last.error}; replayed from Node: ` +
          `${replay.status}), ${s.errors.length} 'error' events without channel/status ("${s.errors[0].message}"), ` +
          `0 of ${MESSAGES} delivered (${Date.now() - started} ms)`,
      );
    } finally {
      await context.close();
    }
  });

  for (const c of [
    { transport: 'websocket' },
    { transport: 'sse' },
    { transport: 'long-poll' },
    { transport: 'iframe', sameOrigin: true },
  ]) {
    test(`${c.transport}: a token function fetching token.php (a Promise) delivers the private channel`, () =>
      delivers({ ...c, token: 'fn', label: `${c.transport} (token function)` }));
  }

  test('the sidecar and PHP are healthy at the end', async () => {
    assert.equal(sidecar.exit, null, 'the sidecar still runs');
    assert.doesNotMatch(php.stderr(), /PHP (Fatal|Warning|Notice|Deprecated)/);
  });
});

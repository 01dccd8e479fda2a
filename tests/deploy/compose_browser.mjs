// The browser half of deploy.compose_up (run by tests/deploy/compose_up.sh once the
// compose stack is up): headless Chromium on the host opens the stack's PHP page six
// times, WebSocket, SSE and long-poll each forced, straight from the sidecar and through
// HAProxy (?via=scaled), and every page receives, exactly once and in order, messages
// posted through the page's form (POST -> comet_publish -> Redis -> every sidecar) and one
// published with the key on the sidecar's public port; then a sidecar behind HAProxy is
// stopped and a further message still reaches every page. Also: the allowed origin
// follows PUBLIC_HOST (another host name gets 403, WebSocket included), a keyless
// publish is refused (401), HAProxy refuses /pub (403).
//
// Environment: APP_URL, SIDECAR_URL, SCALED_URL, OTHER_ORIGIN, COMET_PUBLISH_KEY,
// COMPOSE_ARGS (the docker-compose command line, one argument a line).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { launchBrowser, waitUntil, repoRoot } from '../browser/lib/harness.mjs';

const { APP_URL, SIDECAR_URL, SCALED_URL, OTHER_ORIGIN, COMET_PUBLISH_KEY } = process.env;
const composeArgs = (process.env.COMPOSE_ARGS || '').split('\n').filter(Boolean);
for (const [k, v] of Object.entries({ APP_URL, SIDECAR_URL, SCALED_URL, OTHER_ORIGIN, COMET_PUBLISH_KEY })) {
  assert.ok(v, `${k} is not set (run tests/deploy/compose_up.sh)`);
}
const screenshots = path.join(repoRoot, 'tests/artifacts/screenshots');
const log = (msg) => console.log(`[compose_browser] ${msg}`);

/** A WebSocket handshake to `url` with `origin`: resolves with the HTTP status (101 = accepted). */
function wsHandshake(url, origin) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        Origin: origin,
      },
      timeout: 5000,
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy(new Error(`WebSocket handshake to ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function status(url, init = {}) {
  const res = await fetch(url, { ...init, headers: { Connection: 'close', ...(init.headers || {}) } });
  const body = await res.text();
  return { status: res.status, body };
}

// --- the stack's policies, from outside ------------------------------------------------
const appOrigin = new URL(APP_URL).origin;
for (const base of [SIDECAR_URL, SCALED_URL]) {
  const ws = `${base}/ws?ch=demo`;
  assert.equal(await wsHandshake(ws, appOrigin), 101, `WebSocket from the app's origin ${appOrigin} via ${base}`);
  assert.equal(await wsHandshake(ws, OTHER_ORIGIN), 403, `WebSocket from another origin ${OTHER_ORIGIN} via ${base}`);
}
let r = await status(`${SIDECAR_URL}/pub/demo`, { method: 'POST', body: 'no key' });
assert.equal(r.status, 401, `keyless publish on the public port: ${r.status} ${r.body}`);
r = await status(`${SCALED_URL}/pub/demo`, { method: 'POST', body: 'x', headers: { 'X-Comet-Key': COMET_PUBLISH_KEY } });
assert.equal(r.status, 403, `publish through HAProxy: ${r.status} ${r.body}`);
log('origins follow PUBLIC_HOST; keyless publish 401; HAProxy refuses /pub');

// --- six pages ---------------------------------------------------------------------------
const browser = await launchBrowser();
const pages = [];
let failed = true;
try {
  for (const via of ['direct', 'scaled']) {
    for (const transport of ['websocket', 'sse', 'long-poll']) {
      const context = await browser.newContext();
      const page = await context.newPage();
      page.label = `${transport} ${via === 'direct' ? 'direct' : 'via HAProxy'}`;
      page.problems = [];
      page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
      });
      const qs = new URLSearchParams({ transport, ...(via === 'scaled' ? { via } : {}) });
      await page.goto(`${APP_URL}/?${qs}`, { waitUntil: 'load', timeout: 20000 });
      page.transport = transport;
      pages.push(page);
    }
  }
  const summary = (page) =>
    page.evaluate(() => ({
      state: window.example.conn.state,
      transport: window.example.conn.transport,
      subscribed: !!window.example.subscribed,
      received: window.example.received.map((m) => m.id),
      states: window.example.states.slice(-6),
      errors: window.example.errors.slice(-4),
    }));
  const describe = async () =>
    JSON.stringify(await Promise.all(pages.map(async (p) => ({ page: p.label, ...(await summary(p)), problems: p.problems }))));

  for (const page of pages) {
    await waitUntil(
      () => page.evaluate((t) => {
        const e = window.example;
        return e && e.conn.state === 'open' && e.conn.transport === t && e.subscribed;
      }, page.transport),
      { timeoutMs: 30000, what: `${page.label}: open and subscribed`, detail: describe },
    );
  }
  log(`six pages open: ${pages.map((p) => p.label).join(', ')}`);

  const texts = [];
  /** Types `text` into `page`'s form and sends it (the page POSTs it to PHP). */
  async function postThroughForm(page, text) {
    const answer = page.waitForResponse((res) => res.request().method() === 'POST', { timeout: 10000 });
    await page.fill('input[name=text]', text);
    await page.click('button');
    const res = await answer;
    const body = await res.json();
    assert.equal(res.status(), 200, `form POST on ${page.label}: ${JSON.stringify(body)}`);
    assert.ok(Number.isInteger(body.id), `comet_publish returned ${JSON.stringify(body)}`);
    texts.push(text);
    return body.id;
  }
  async function waitAllReceived(what) {
    for (const page of pages) {
      await waitUntil(
        () => page.evaluate((n) => window.example.received.length >= n, texts.length),
        { timeoutMs: 30000, intervalMs: 100, what: `${page.label}: ${what}`, detail: describe },
      );
    }
    for (const page of pages) {
      const got = await page.evaluate(() => window.example.received.map((m) => JSON.parse(m.data).text));
      assert.deepEqual(got, texts, `${page.label}: messages (each once, in order)`);
      const ids = await page.evaluate(() => window.example.received.map((m) => m.id));
      for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `${page.label}: ids in order ${ids}`);
    }
  }

  // 1. Through PHP, from the WebSocket page and from a long-poll page behind HAProxy.
  await postThroughForm(pages[0], 'hello from the form');
  await postThroughForm(pages[5], 'second, from a page behind HAProxy');
  // 2. With the key on the sidecar's public port (a publisher outside the app).
  r = await status(`${SIDECAR_URL}/pub/demo`, { method: 'POST', body: JSON.stringify({ text: 'published with the key' }), headers: { 'X-Comet-Key': COMET_PUBLISH_KEY } });
  assert.equal(r.status, 200, `publish with the key: ${r.status} ${r.body}`);
  texts.push('published with the key');
  await waitAllReceived('the three messages');
  log('every page received the form posts and the keyed publish, once each, in order');

  // 3. One sidecar behind HAProxy goes away: HAProxy's checks take it out, its pages
  // reconnect through HAProxy to the other one and resume from their cursors.
  if (composeArgs.length) {
    const [cmd, ...args] = composeArgs;
    await promisify(execFile)(cmd, [...args, 'stop', '--timeout', '5', 'sidecar-a'], { timeout: 60000 });
    log('stopped sidecar-a');
    await postThroughForm(pages[1], 'after sidecar-a stopped');
    await waitAllReceived('the message posted after sidecar-a stopped');
    for (const page of pages.slice(3)) {
      const s = await summary(page);
      assert.equal(s.transport, page.transport, `${page.label}: still on its transport after the failover`);
    }
    log('after stopping sidecar-a every page (HAProxy ones reconnected) received the next post');
  }

  for (const page of pages) assert.deepEqual(page.problems.filter((p) => !/ERR_|net::|WebSocket|status of 50[23]/.test(p)), [], `${page.label}: page errors`);
  failed = false;
} finally {
  if (failed) {
    mkdirSync(screenshots, { recursive: true });
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: path.join(screenshots, `compose_up_${i}.png`) }).catch(() => {});
    }
  }
  await browser.close();
}
log('ok');

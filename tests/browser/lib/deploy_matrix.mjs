// The demo app (deploy/demo-app) end to end behind a real web server running a shipped
// recipe, shared by deploy_apache.test.mjs and deploy_nginx.test.mjs.
//
// One sidecar (default --heartbeat, 15 s: a stream whose open notice waited for a
// heartbeat, or that a proxy buffered, misses comet.js's 8 s open window and the
// transport check fails), one front (the web server: PHP pages and /comet/), one
// Chromium. For every transport comet.js has, forced in turn: a sender page and a
// receiver page (chat.php?transport=T, two browser contexts: two browsers, no tab
// sharing), 5 lines posted through the chat form (PHP comet_publish()), counted on the
// receiver: delivered / lost / duplicated, time to open and to the first event. One
// line per transport is printed ("DEPLOY <recipe> <transport>: ...") and the PNG of the
// receiver is written under the build folder (see ARTIFACT_DIR). Then the dashboard
// (dashboard-feed.php from the command line) and the private inbox (demo login,
// comet_token(), private:user/<name>/inbox).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, repoRoot, runCleanups, SCREENSHOT_DIR, SIDECAR_BIN, startSidecar, waitUntil, withTimeout } from './harness.mjs';
import { PHP_BIN } from './webservers.mjs';

export const DEMO_APP = path.join(repoRoot, 'deploy/demo-app');

// Every transport of comet.js (js-client/README.md, "transports").
export const TRANSPORTS = ['websocket', 'sse', 'xhr-stream', 'iframe', 'htmlfile', 'multipart', 'dom-event-stream', 'long-poll', 'jsonp', 'poll'];
const MESSAGES = 5;

/**
 * Where the PNGs go: $COMET_ARTIFACT_DIR, else <build>/tests/artifacts/screenshots/deploy
 * when the sidecar binary is in a CMake build folder (…/<build>/sidecar/comet-sidecar),
 * else tests/artifacts/screenshots/deploy.
 */
export const ARTIFACT_DIR = (() => {
  if (process.env.COMET_ARTIFACT_DIR) return path.resolve(process.env.COMET_ARTIFACT_DIR);
  const build = path.resolve(path.dirname(SIDECAR_BIN), '..');
  if (existsSync(path.join(build, 'CMakeCache.txt'))) return path.join(build, 'tests/artifacts/screenshots/deploy');
  return path.join(SCREENSHOT_DIR, 'deploy');
})();

async function shot(page, name) {
  mkdirSync(ARTIFACT_DIR, { recursive: true });
  const file = path.join(ARTIFACT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return path.relative(process.cwd(), file);
}

/** Opens `url` in a new page of `context`, recording page errors in page.problems. */
async function openPage(context, url) {
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
    if (process.env.COMET_BROWSER_DEBUG) console.log(`[page] ${msg.text()}`);
  });
  const res = await page.goto(url, { waitUntil: 'load', timeout: 20000 });
  assert.equal(res.status(), 200, `GET ${url}`);
  return page;
}

function appState(page) {
  return page.evaluate(() => {
    const a = window.demoApp;
    return {
      state: a.conn && a.conn.state,
      transport: a.conn && a.conn.transport,
      transports: a.transports,
      states: a.states,
      errors: a.errors,
      received: a.received,
      answers: a.answers,
      timeOrigin: performance.timeOrigin,
    };
  });
}

async function summary(page) {
  try {
    const s = await appState(page);
    return JSON.stringify({ state: s.state, transport: s.transport, transports: s.transports, received: s.received.length, errors: s.errors.slice(-3) });
  } catch (err) {
    return `(unavailable: ${err.message})`;
  }
}

/** Waits until the page's connection is open (on `transport` if given) and `ch` is live. */
async function waitLive(page, ch, transport, timeoutMs = 20000) {
  await waitUntil(
    () => page.evaluate(
      ([c, t]) => {
        const conn = window.demoApp && window.demoApp.conn;
        return !!conn && conn.state === 'open' && (!t || conn.transport === t) && !!conn.pos[c];
      },
      [ch, transport],
    ),
    { timeoutMs, what: `${ch} live${transport ? ` on ${transport}` : ''}`, detail: () => summary(page) },
  );
}

/** Posts the chat form of `page` and waits for PHP's answer (the page's fetch). */
async function postChat(page, name, text) {
  const before = await page.evaluate(() => window.demoApp.answers.length);
  await page.fill('#name', name);
  await page.fill('#text', text);
  await page.click('#chat button');
  await waitUntil(() => page.evaluate((n) => window.demoApp.answers.length > n, before), { timeoutMs: 10000, what: `PHP's answer to "${text}"` });
  const answer = await page.evaluate(() => window.demoApp.answers[window.demoApp.answers.length - 1]);
  assert.equal(answer.status, 200, `chat.php answered ${JSON.stringify(answer)}`);
  return answer;
}

/**
 * The whole suite for one recipe. `startFront({sidecar, secret})` starts the web server
 * (PHP pages + the recipe's /comet/) and returns {url, stop(), logs()}; `expectSapi` is
 * what index.php reports as PHP_SAPI through it.
 */
export function runDeployMatrix({ recipe, startFront, expectSapi, transports = TRANSPORTS, extraTests }) {
  describe(`demo app through ${recipe}`, () => {
    const cleanups = [];
    const rows = [];
    const ctx = {};

    before(async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-deploy-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      ctx.secret = randomBytes(32).toString('hex');
      const secretFile = path.join(dir, 'token-secret');
      writeFileSync(secretFile, `${ctx.secret}\n`, { mode: 0o600 });
      // The default --heartbeat (15 s) on purpose: see the top of this file.
      ctx.sidecar = await startSidecar(['--workers', '2', '--token-secret-file', secretFile]);
      cleanups.push(() => ctx.sidecar.stop());
      ctx.publishUrl = /publish listener on (\S+:\d+)/.exec(ctx.sidecar.stdout)?.[1];
      assert.ok(ctx.publishUrl, `the sidecar prints its publish listener: ${ctx.sidecar.stdout}`);
      ctx.publishUrl = `http://${ctx.publishUrl}`;
      // What the PHP pages (and dashboard-feed.php) need to know.
      ctx.appEnv = { COMET_PUBLISH_URL: ctx.publishUrl, COMET_TOKEN_SECRET: ctx.secret, DEMO_COMET_URL: '/comet' };
      ctx.front = await startFront(ctx);
      // Stopped after the sidecar (cleanups run in reverse): a web server process still
      // relaying a stream only notices its closed client once the sidecar ends it.
      cleanups.splice(1, 0, () => ctx.front.stop());
      ctx.browser = await launchBrowser();
      cleanups.push(() => ctx.browser.close());
    });

    after(async () => {
      try {
        await runCleanups(cleanups);
      } finally {
        console.log(`\n${recipe}: recipe × transport (${MESSAGES} chat lines posted through the PHP form, counted on a second page)`);
        for (const r of rows) console.log(r);
        console.log(`screenshots: ${ARTIFACT_DIR}`);
      }
    });

    test('the start page is PHP run by the web server; comet.js comes through /comet/, /comet/pub is refused', async () => {
      const home = await fetch(`${ctx.front.url}/`);
      const html = await home.text();
      assert.equal(home.status, 200, html);
      assert.match(html, /Comet Sidecar demo app/);
      assert.match(html, new RegExp(`\\(${expectSapi}\\)`), `PHP_SAPI ${expectSapi}`);
      assert.match(html, new RegExp(`HTTP, ${ctx.publishUrl.replace(/[.:/]/g, '\\$&')}`), 'PHP publishes to the publish listener');
      assert.match(html, /token secret<\/th><td>set/);
      const js = await fetch(`${ctx.front.url}/comet/comet.js`);
      assert.equal(js.status, 200);
      assert.match(await js.text(), /Comet/);
      const pub = await fetch(`${ctx.front.url}/comet/pub/chat`, { method: 'POST', body: 'from outside' });
      assert.equal(pub.status, 403, 'the recipe refuses /comet/pub');
      assert.doesNotMatch(await pub.text(), /"status"/, 'refused by the proxy, not the sidecar');
    });

    for (const transport of transports) {
      test(`${transport}: a line posted through the PHP chat form appears in a second page, each once`, async () => {
        const row = { transport, delivered: 0, lost: MESSAGES, duplicated: 0, openMs: NaN, firstMs: NaN, phpMs: NaN, note: '' };
        const contexts = [];
        try {
          const sender = await ctx.browser.newContext({ viewport: { width: 900, height: 640 } });
          const receiver = await ctx.browser.newContext({ viewport: { width: 900, height: 640 } });
          contexts.push(sender, receiver);
          const url = `${ctx.front.url}/chat.php?transport=${transport}`;
          const rpage = await openPage(receiver, url);
          await waitLive(rpage, 'chat', transport);
          const spage = await openPage(sender, url);
          await waitLive(spage, 'chat', transport);
          const r0 = await appState(rpage);
          row.openMs = r0.states.find((s) => s.state === 'open').at - r0.timeOrigin;
          // Streams show their open notice at once, not at the first heartbeat (15 s here).
          assert.ok(row.openMs < 4000, `open after ${Math.round(row.openMs)} ms`);
          const tag = `${transport}-${Date.now().toString(36)}`;
          const texts = [];
          const submits = [];
          for (let i = 1; i <= MESSAGES; i++) {
            const text = `${tag} #${i} <b>&amp;</b> \u00e9\u2028"`;
            texts.push(text);
            const answer = await postChat(spage, `sender-${transport}`, text);
            // When the page sent the form (its fetch), and when PHP had published it.
            submits.push({ sent: await spage.evaluate(() => window.demoApp.lastSubmitAt), answered: answer.at });
          }
          const mine = (s) => s.received.filter((m) => texts.includes(JSON.parse(m.data).text));
          try {
            await waitUntil(async () => new Set(mine(await appState(rpage)).map((m) => m.data)).size >= MESSAGES, {
              timeoutMs: 15000,
              intervalMs: 50,
              what: `${MESSAGES} chat lines on the receiving page`,
              detail: () => summary(rpage),
            });
          } catch (err) {
            row.note = err.message.slice(0, 200);
          }
          // Anything repeated would come right behind.
          await new Promise((r) => setTimeout(r, 300));
          const s = await appState(rpage);
          const got = mine(s).map((m) => ({ ...m, text: JSON.parse(m.data).text }));
          const distinct = new Set(got.map((m) => m.text));
          row.delivered = distinct.size;
          row.lost = MESSAGES - distinct.size;
          row.duplicated = got.length - distinct.size;
          if (got.length) row.firstMs = got[0].at - submits[0].sent;
          row.phpMs = submits[0].answered - submits[0].sent;
          row.transports = s.transports;
          row.shot = await shot(rpage, `${recipe.replace(/[^a-z0-9]+/gi, '-')}-${transport}`);
          assert.deepEqual(got.map((m) => m.text), texts, 'every line once, in order');
          assert.deepEqual(s.transports, [transport], 'no other transport was used (no fallback)');
          assert.deepEqual(rpage.problems, [], 'no page errors');
          // The sender's own page got them too.
          await waitUntil(async () => mine(await appState(spage)).length >= MESSAGES, {
            timeoutMs: 10000,
            what: 'the sending page to receive its own lines',
            detail: () => summary(spage),
          });
        } catch (err) {
          row.note ||= err.message.split('\n')[0].slice(0, 200);
          throw err;
        } finally {
          rows.push(
            `DEPLOY ${recipe} ${transport.padEnd(16)} delivered ${row.delivered}/${MESSAGES}, lost ${row.lost}, duplicated ${row.duplicated}, ` +
              `open ${Math.round(row.openMs)} ms, first event ${Number.isNaN(row.firstMs) ? '-' : Math.round(row.firstMs)} ms ` +
              `(the form's answer came back after ${Number.isNaN(row.phpMs) ? '-' : Math.round(row.phpMs)} ms)` +
              `${row.transports && row.transports.join(',') !== transport ? `, transports used ${row.transports.join('>')}` : ''}` +
              `${row.note ? `, FAILED: ${row.note}` : ''}${row.shot ? `; ${row.shot}` : ''}`,
          );
          for (const c of contexts) await c.close();
        }
      });
    }

    test('dashboard: dashboard-feed.php (PHP CLI) publishes samples, the page shows them live', async () => {
      const context = await ctx.browser.newContext({ viewport: { width: 900, height: 640 } });
      try {
        const page = await openPage(context, `${ctx.front.url}/dashboard.php`);
        await waitLive(page, 'dashboard');
        const feed = spawn(PHP_BIN, [path.join(DEMO_APP, 'dashboard-feed.php'), '--count', '4', '--interval', '0.25'], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COMET_'))), ...ctx.appEnv },
        });
        let out = '';
        feed.stdout.on('data', (c) => (out += c));
        feed.stderr.on('data', (c) => (out += c));
        const code = await withTimeout(new Promise((resolve) => feed.on('exit', resolve)), 15000, 'dashboard-feed.php to finish');
        assert.equal(code, 0, out);
        assert.equal((out.match(/^published #\d+ to dashboard$/gm) || []).length, 4, out);
        await waitUntil(async () => (await appState(page)).received.length >= 4, { timeoutMs: 10000, what: '4 samples', detail: () => summary(page) });
        const seq = await page.textContent('#seq');
        assert.equal(seq, '4');
        assert.match(await page.textContent('#load'), /^\d+\.\d\d, \d+\.\d\d, \d+\.\d\d$/);
        assert.match(await page.textContent('#mem'), /% of \d+ MiB/);
        const s = await appState(page);
        console.log(`DEPLOY ${recipe} dashboard: 4 samples from dashboard-feed.php shown, transport ${s.transport}; ${await shot(page, `${recipe.replace(/[^a-z0-9]+/gi, '-')}-dashboard`)}`);
      } finally {
        await context.close();
      }
    });

    test('private inbox: demo login, comet_token() via token.php, private:user/<name>/inbox reaches only its user', async () => {
      const noLogin = await fetch(`${ctx.front.url}/token.php`);
      assert.equal(noLogin.status, 401, 'no token without a login');
      const contexts = [];
      try {
        const pages = {};
        for (const user of ['ann', 'bob']) {
          const context = await ctx.browser.newContext({ viewport: { width: 900, height: 640 } });
          contexts.push(context);
          const page = await openPage(context, `${ctx.front.url}/private.php`);
          await page.fill('#user', user);
          await page.click('#login button');   // a plain form post, then a 303 back here
          await page.waitForSelector('#me', { timeout: 10000 });
          assert.equal(await page.textContent('#me'), user);
          await waitLive(page, `private:user/${user}/inbox`);
          pages[user] = page;
        }
        // Ann may not listen to Bob's inbox: the sidecar refuses it (her token covers hers).
        await pages.ann.evaluate(() => window.demoApp.conn.subscribe('private:user/bob/inbox', () => {
          window.demoApp.stolen = (window.demoApp.stolen || 0) + 1;
        }));
        await waitUntil(
          async () => (await appState(pages.ann)).errors.find((e) => e.channel === 'private:user/bob/inbox'),
          { timeoutMs: 10000, what: "the refusal of Bob's inbox on Ann's page", detail: () => summary(pages.ann) },
        );
        const refusal = (await appState(pages.ann)).errors.find((e) => e.channel === 'private:user/bob/inbox');
        assert.equal(refusal.status, 403);
        // Ann writes to Bob through the PHP form.
        await pages.ann.fill('#to', 'bob');
        await pages.ann.fill('#text', 'for bob only');
        await pages.ann.click('#send button');
        await waitUntil(() => pages.ann.evaluate(() => window.demoApp.answers.length > 0), { timeoutMs: 10000, what: 'private.php to answer' });
        const answer = await pages.ann.evaluate(() => window.demoApp.answers[0]);
        assert.equal(answer.status, 200, JSON.stringify(answer));
        await waitUntil(async () => (await appState(pages.bob)).received.length >= 1, { timeoutMs: 10000, what: "Bob's note", detail: () => summary(pages.bob) });
        const bob = await appState(pages.bob);
        assert.equal(bob.received.length, 1);
        assert.equal(bob.received[0].ch, 'private:user/bob/inbox');
        assert.deepEqual(
          (({ from, text }) => ({ from, text }))(JSON.parse(bob.received[0].data)),
          { from: 'ann', text: 'for bob only' },
        );
        const ann = await appState(pages.ann);
        assert.equal(ann.received.length, 0, 'nothing of Bob reached Ann');
        assert.equal(await pages.ann.evaluate(() => window.demoApp.stolen || 0), 0);
        console.log(
          `DEPLOY ${recipe} private: bob received ann's note on ${bob.transport}; ann refused bob's inbox (403); ` +
            `${await shot(pages.bob, `${recipe.replace(/[^a-z0-9]+/gi, '-')}-private-bob`)}`,
        );
      } finally {
        for (const c of contexts) await c.close();
      }
    });

    if (extraTests) extraTests(ctx);
  });
}

// Presence in real Chromium: the demo app's chat (deploy/demo-app/chat.php, PHP's
// built-in server) shows who has it open, from a presence channel whose token
// (presence-token.php, comet_token() with `sub` and `info`) names each browser. Two
// browser contexts (two browsers: tab sharing would make them one connection, one user)
// open the chat: each sees the other join, and the one left sees the other leave once
// the closed page's grace period is over; nobody is reported twice. Over a stream
// (notices) and a polling transport (lists compared by comet.js).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { freePort, launchBrowser, repoRoot, runCleanups, screenshot, startSidecar, waitUntil, withTimeout } from './lib/harness.mjs';

const APP_DIR = path.join(repoRoot, 'deploy/demo-app');
const CHANNEL = 'presence:chat';
const GRACE_MS = 500;
const POLL_TIMEOUT_MS = 3000;
const TRANSPORTS = ['websocket', 'sse', 'long-poll', 'poll'];

/** `php -S` on the demo app, its own process group, talking to `sidecar`. */
async function startPhp({ secret, cometUrl, publishUrl, sessionDir }) {
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COMET_') && !k.startsWith('DEMO_')));
  Object.assign(env, { COMET_TOKEN_SECRET: secret, COMET_PUBLISH_URL: publishUrl, DEMO_COMET_URL: cometUrl, PHP_CLI_SERVER_WORKERS: '4' });
  const child = spawn('php', ['-d', `session.save_path=${sessionDir}`, '-S', `127.0.0.1:${port}`, '-t', APP_DIR], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
    env,
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => (stderr += c));
  const kill = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // gone
    }
  };
  const onExit = () => kill('SIGKILL');
  process.on('exit', onExit);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      try {
        return (await fetch(`${url}/presence-token.php`)).ok;
      } catch {
        return false;
      }
    },
    { what: `php -S on port ${port}`, detail: () => stderr },
  );
  return {
    url,
    async stop() {
      kill('SIGTERM');
      await withTimeout(exited, 5000, 'php -S to exit').catch(() => kill('SIGKILL'));
      process.off('exit', onExit);
      child.stderr.destroy();
    },
  };
}

async function openChat(browser, url) {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
  });
  await page.goto(url, { waitUntil: 'load', timeout: 20000 });
  return { context, page };
}

/** What the page knows: its members list, presence events, connection state, errors. */
function presenceState(page) {
  return page.evaluate((ch) => {
    const a = window.demoApp;
    return {
      members: (a.members[ch] || []).map((m) => m.id),
      names: (a.members[ch] || []).map((m) => m.info && m.info.name),
      events: a.presenceEvents.map((e) => `${e.type} ${e.id}`),
      online: document.getElementById('online') && document.getElementById('online').textContent,
      state: a.conn && a.conn.state,
      transport: a.conn && a.conn.transport,
      errors: a.errors,
    };
  }, CHANNEL);
}

describe('presence in the demo chat, two browsers', () => {
  const cleanups = [];
  let sidecar;
  let php;
  let browser;
  const rows = [];

  before(async () => {
    const secret = randomBytes(24).toString('base64');
    // --poll-timeout 3s: a long-poll member whose page closed stays while its request is
    // held (the sidecar does not notice the abandoned request before answering it), so
    // its leave comes after at most the poll timeout plus the grace.
    sidecar = await startSidecar(['--token-secret', secret, '--presence-grace', `${GRACE_MS}ms`, '--poll-timeout', `${POLL_TIMEOUT_MS}ms`]);
    cleanups.push(() => sidecar.stop());
    const publishUrl = `http://127.0.0.1:${/publish listener on \S+:(\d+)/.exec(sidecar.stdout)[1]}`;
    const sessionDir = mkdtempSync(path.join(os.tmpdir(), 'comet-presence-sessions-'));
    cleanups.push(() => rmSync(sessionDir, { recursive: true, force: true }));
    php = await startPhp({ secret, cometUrl: sidecar.url, publishUrl, sessionDir });
    cleanups.push(() => php.stop());
    browser = await launchBrowser();
    cleanups.push(() => browser.close());
  });
  after(async () => {
    if (rows.length) console.table(rows);
    await runCleanups(cleanups);
  });

  for (const transport of TRANSPORTS) {
    test(`${transport}: each page sees the other join, and the one left sees it leave`, async () => {
      const url = `${php.url}/chat.php?transport=${transport}&poll=300`;
      const contexts = [];
      try {
        // Nobody left from the previous transport's pages (their grace is over).
        const a = await openChat(browser, url);
        contexts.push(a.context);
        let sa;
        await waitUntil(async () => (sa = await presenceState(a.page)).members.length === 1 && sa.state === 'open', {
          what: 'the first page to see itself alone',
          detail: async () => JSON.stringify(await presenceState(a.page)),
        });
        const idA = sa.members[0];
        assert.match(idA, /^guest-[0-9a-f]{6}$/);
        assert.equal(sa.transport, transport);

        const b = await openChat(browser, url);
        contexts.push(b.context);
        let sb;
        await waitUntil(async () => (sb = await presenceState(b.page)).members.length === 2, {
          what: 'the second page to see both',
          detail: async () => JSON.stringify(await presenceState(b.page)),
        });
        const idB = sb.members.find((id) => id !== idA);
        assert.ok(idB && sb.members.includes(idA), JSON.stringify(sb));
        const joinedAt = Date.now();
        await waitUntil(async () => (sa = await presenceState(a.page)).events.includes(`join ${idB}`), {
          what: `the first page to see ${idB} join`,
          detail: async () => JSON.stringify(await presenceState(a.page)),
        });
        const joinMs = Date.now() - joinedAt;
        assert.match(sa.online, new RegExp(idB));
        const shot = await screenshot(a.page, `presence-${transport}`);

        await b.context.close();
        contexts.pop();
        const closedAt = Date.now();
        await waitUntil(async () => (sa = await presenceState(a.page)).events.includes(`leave ${idB}`), {
          timeoutMs: POLL_TIMEOUT_MS + GRACE_MS + 5000,
          what: `the first page to see ${idB} leave`,
          detail: async () => JSON.stringify(await presenceState(a.page)),
        });
        const leaveMs = Date.now() - closedAt;
        assert.deepEqual(sa.members, [idA]);
        const counts = (id) => sa.events.filter((e) => e.endsWith(` ${id}`)).map((e) => e.split(' ')[0]);
        assert.deepEqual(counts(idB), ['join', 'leave'], 'the other page: one join, one leave');
        assert.deepEqual(counts(idA), ['members'], 'itself: in the first list, never joining or leaving');
        assert.deepEqual(a.page.problems, []);
        assert.deepEqual(sa.errors.filter((e) => e.channel), []);
        rows.push({ transport, joinMs, leaveMs, graceMs: GRACE_MS, screenshot: shot });
      } finally {
        for (const c of contexts) await c.close();
      }
      // Let this transport's first page leave before the next transport starts.
      await new Promise((r) => setTimeout(r, (transport === 'long-poll' ? POLL_TIMEOUT_MS : 0) + GRACE_MS + 700));
    });
  }
});

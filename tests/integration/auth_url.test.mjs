// --auth-url against a real PHP app (PHP's built-in server, session_start()): the
// sidecar asks the app with the browser's cookies, caches the answer, asks identical
// questions once, and refuses whenever the app cannot answer (down, slow, broken).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { closeWs, openWs, sendJson } from './lib/clients.mjs';
import { freePort } from './lib/redis.mjs';
import { publishOk, startSidecar, uniqueChannel, waitUntil, withTimeout } from './lib/sidecar.mjs';
import { collect } from './lib/tokens.mjs';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/auth_app');

/** PHP's built-in server on the test app; `questions()` counts what auth.php was asked. */
async function startPhpApp() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-auth-app-'));
  const countFile = path.join(dir, 'questions');
  writeFileSync(countFile, '');
  const port = await freePort();
  const child = spawn('php', ['-d', `session.save_path=${dir}`, '-S', `127.0.0.1:${port}`, '-t', appDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // Its own process group: PHP_CLI_SERVER_WORKERS forks workers that must stop with it.
    detached: true,
    // Several PHP workers, as behind Apache: concurrent questions are not serialised.
    env: { ...process.env, COMET_TEST_AUTH_COUNT: countFile, PHP_CLI_SERVER_WORKERS: '4' },
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  process.on('exit', () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // stopped already
    }
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      try {
        return (await fetch(`${url}/login.php?user=0`)).ok;
      } catch {
        return false;
      }
    },
    { what: `php -S on ${port} (${stderr})` },
  );
  return {
    url,
    questions: () => readFileSync(countFile, 'utf8').split('\n').filter(Boolean).length,
    async login(user) {
      const res = await fetch(`${url}/login.php?user=${user}`);
      await res.text();
      return res.headers.get('set-cookie').split(';')[0]; // PHPSESSID=...
    },
    async stop() {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      await withTimeout(exited, 5000, 'php -S to exit');
      child.stderr.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('--auth-url with a PHP session', () => {
  let app;
  let sc;
  before(async () => {
    app = await startPhpApp();
    sc = await startSidecar(['--workers', '2', '--auth-url', `${app.url}/auth.php`]);
  });
  after(async () => {
    await sc?.stop();
    await app?.stop();
  });

  async function privateFor(user) {
    const ch = `private:user/${user}/${uniqueChannel('inbox')}`;
    await publishOk(sc, ch, `SECRET for ${user}`);
    return ch;
  }

  test('allowed by the session, refused for another user, 401 without a cookie', async () => {
    const cookie = await app.login(7);
    const mine = await privateFor(7);
    const theirs = await privateFor(8);
    const ok = await collect(`${sc.url}/poll?wait=0&ch=${mine}&cursor=${mine}@.0`, { headers: { Cookie: cookie } });
    assert.equal(ok.status, 200, ok.body);
    assert.match(ok.body, /SECRET for 7/);
    const refused = await collect(`${sc.url}/poll?wait=0&ch=${theirs}&cursor=${theirs}@.0`, { headers: { Cookie: cookie } });
    assert.equal(refused.status, 403);
    assert.match(JSON.parse(refused.body).error, /the app refused it/);
    assert.doesNotMatch(refused.body, /SECRET/);
    const anonymous = await collect(`${sc.url}/poll?wait=0&ch=${mine}&cursor=${mine}@.0`);
    assert.equal(anonymous.status, 401);
  });

  test('an SSE stream and a held long-poll wait for the app, then start', async () => {
    const cookie = await app.login(9);
    const ch = await privateFor(9);
    const sse = await collect(`${sc.url}/sse?ch=${ch}&cursor=${ch}@.0`, {
      headers: { Cookie: cookie },
      until: (b) => b.includes('SECRET'),
    });
    assert.equal(sse.status, 200);
    assert.match(sse.body, /SECRET for 9/);
    // A fresh session: not cached, the poll waits for PHP and then for a message.
    const other = await app.login(9);
    const held = collect(`${sc.url}/poll?ch=${ch}`, { headers: { Cookie: other }, ms: 5000, until: (b) => b.includes('later') });
    await new Promise((r) => setTimeout(r, 300));
    await publishOk(sc, ch, 'later');
    const res = await held;
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /later/);
  });

  test('WebSocket: the handshake cookie authorizes each sub; refused ones get an error', async () => {
    const cookie = await app.login(11);
    const mine = await privateFor(11);
    const theirs = await privateFor(12);
    const ws = await openWs(`${sc.wsUrl}/ws`, { headers: { Cookie: cookie } });
    sendJson(ws, { cmd: 'sub', ch: [theirs, mine], since: '.0' });
    const got = [];
    while (!got.some((m) => m.data === 'SECRET for 11') || !got.some((m) => m.type === 'error')) {
      got.push(await ws.messages.take(5000));
    }
    const error = got.find((m) => m.type === 'error');
    assert.deepEqual([error.error, error.ch, error.status], ['forbidden', theirs, 403]);
    assert.ok(!JSON.stringify(got).includes('SECRET for 12'));
    await closeWs(ws);
  });

  test('1,000 polls by one session cost a handful of PHP requests', async () => {
    const cookie = await app.login(21);
    const ch = await privateFor(21);
    const before = app.questions();
    let ok = 0;
    // 20 rounds of 50 concurrent polls: cache hits, and identical questions in flight asked once.
    for (let round = 0; round < 20; round++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, () => collect(`${sc.url}/poll?wait=0&ch=${ch}&cursor=${ch}@.0`, { headers: { Cookie: cookie } })),
      );
      ok += answers.filter((a) => a.status === 200 && a.body.includes('SECRET')).length;
    }
    const asked = app.questions() - before;
    console.log(`auth-url cache: 1000 polls, ${ok} answered with the message, ${asked} PHP requests (2 workers)`);
    assert.equal(ok, 1000);
    assert.ok(asked >= 1 && asked <= 4, `${asked} PHP requests for 1000 polls`);
  });
});

describe('--auth-url failures refuse (fail closed)', () => {
  test('PHP down: refused at once', async () => {
    const port = await freePort(); // nothing listens there
    const sc = await startSidecar(['--auth-url', `http://127.0.0.1:${port}/auth.php`]);
    try {
      const ch = `private:${uniqueChannel('down')}`;
      await publishOk(sc, ch, 'SECRET');
      const started = Date.now();
      const res = await collect(`${sc.url}/poll?wait=0&ch=${ch}&cursor=${ch}@.0`, { headers: { Cookie: 'PHPSESSID=x' } });
      const took = Date.now() - started;
      assert.equal(res.status, 403);
      assert.doesNotMatch(res.body, /SECRET/);
      assert.ok(took < 1000, `took ${took} ms`);
    } finally {
      await sc.stop();
    }
  });

  test('slow PHP: refused after --auth-timeout', async () => {
    const app = await startPhpApp();
    const sc = await startSidecar(['--auth-url', `${app.url}/auth.php?sleep=3000`, '--auth-timeout', '400ms']);
    try {
      const cookie = await app.login(5);
      const ch = `private:user/5/${uniqueChannel('slow')}`;
      await publishOk(sc, ch, 'SECRET');
      const started = Date.now();
      const res = await collect(`${sc.url}/poll?wait=0&ch=${ch}&cursor=${ch}@.0`, { headers: { Cookie: cookie }, ms: 5000 });
      const took = Date.now() - started;
      assert.equal(res.status, 403, res.body);
      assert.match(JSON.parse(res.body).error, /timed out/);
      assert.ok(took >= 350 && took < 1500, `took ${took} ms`);
    } finally {
      await sc.stop();
      await app.stop();
    }
  });
});

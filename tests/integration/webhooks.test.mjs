// --webhook-url against a real PHP endpoint (PHP's built-in server running
// fixtures/webhook_app/webhook.php, which verifies every request with the PHP client's
// comet_webhook_batch() and skips a batch id it has processed, as docs/protocol.md
// recommends): presence transitions arrive once each, signed; a tampered or stale
// request is refused by the verifier; an endpoint that is down (not started yet,
// stopped, answering 500) gets every event once it is back, none twice; a graceful stop
// (SIGTERM) delivers what is queued, the leaves of its last members included, and an
// endpoint that is down or never answers holds up the exit at most 5 s.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { closeWs, openWs, sendJson } from './lib/clients.mjs';
import { canConnect } from './lib/processes.mjs';
import { freePort, RedisServer, startRedisSidecar } from './lib/redis.mjs';
import { delay, startSidecar, uniqueChannel, waitUntil, withTimeout } from './lib/sidecar.mjs';
import { tokenFor } from './lib/tokens.mjs';

const appDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/webhook_app');
const TOKEN_SECRET = 'webhook-test-token-secret';
const WEBHOOK_SECRET = 'webhook-test-secret';
const GRACE_MS = 300;

/** The PHP endpoint on `port`; its log is shared across restarts (same `dir`). */
async function startEndpoint(port, dir) {
  const log = path.join(dir, 'webhooks.log');
  if (!existsSync(log)) writeFileSync(log, '');
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, '-t', appDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
    env: { ...process.env, COMET_TEST_WEBHOOK_LOG: log, COMET_WEBHOOK_SECRET: WEBHOOK_SECRET },
  });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const kill = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // stopped already
    }
  };
  process.on('exit', kill);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${port}/webhook.php`;
  // Connecting is enough: a request would be logged as refused.
  await waitUntil(() => canConnect(port), { what: `php -S on ${port} (${stderr})` });
  return {
    url,
    log,
    async stop() {
      process.off('exit', kill);
      kill();
      await withTimeout(exited, 5000, 'php -S to exit');
      child.stderr.destroy();
    },
  };
}

/** What the endpoint logged: verified events (with their batch id), attempts, refusals. */
function readLog(log) {
  const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  return {
    events: lines.filter((l) => l.event),
    attempts: lines.filter((l) => l.attempt),
    rejected: lines.filter((l) => l.rejected),
  };
}

const key = (e) => `${e.name}|${e.channel}|${e.user_id ?? ''}|${e.time_ms}`;

/** Fails on any event logged twice (a batch processed twice, or an event in two batches). */
function assertNoDuplicates(events, attempts = []) {
  const seen = new Map();
  for (const { id, event } of events) {
    const k = key(event);
    assert.ok(!seen.has(k), `event ${k} delivered twice (batches ${seen.get(k)} and ${id}); attempts: ${JSON.stringify(attempts)}`);
    seen.set(k, id);
  }
}

/** A WebSocket member of `ch` (user `sub`), once subscribed. */
async function member(sc, ch, sub, info) {
  const token = tokenFor(ch, TOKEN_SECRET, { sub, extra: info ? { info } : {} });
  const ws = await openWs(`${sc.wsUrl}/ws?token=${token}`);
  sendJson(ws, { cmd: 'sub', ch });
  const subscribed = await ws.messages.take(5000, (m) => m.type === 'subscribed' || m.type === 'error');
  assert.equal(subscribed.type, 'subscribed', JSON.stringify(subscribed));
  return ws;
}

async function metric(sc, name) {
  const text = await (await fetch(`${sc.publishUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

function sidecarFlags(url, grace = `${GRACE_MS}ms`) {
  return [
    '--token-secret', TOKEN_SECRET,
    '--presence-grace', grace,
    '--webhook-url', url,
    '--webhook-secret', WEBHOOK_SECRET,
  ];
}

describe('webhooks to a PHP endpoint', () => {
  let dir;
  let endpoint;
  let sc;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'comet-webhooks-'));
    endpoint = await startEndpoint(await freePort(), dir);
    sc = await startSidecar(sidecarFlags(endpoint.url));
  });
  after(async () => {
    await sc?.stop();
    await endpoint?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('each transition arrives once, verified, in order', async () => {
    const ch = uniqueChannel('presence:wh');
    const ann = await member(sc, ch, '1', { name: 'Ann' });
    const bob = await member(sc, ch, '2');
    await closeWs(ann);
    await closeWs(bob);
    const ours = () => readLog(endpoint.log).events.filter((e) => e.event.channel === ch);
    await waitUntil(() => ours().length >= 6, { timeoutMs: 10000, what: '6 events for ' + ch });
    await delay(GRACE_MS + 500); // nothing more comes
    const events = ours();
    assertNoDuplicates(events);
    const names = events.map(({ event: e }) => `${e.name}${e.user_id ? ':' + e.user_id : ''}`);
    assert.deepEqual(names.slice(0, 3), ['channel_occupied', 'member_added:1', 'member_added:2']);
    assert.deepEqual(names.slice(3, 5).sort(), ['member_removed:1', 'member_removed:2']);
    assert.equal(names[5], 'channel_vacated');
    assert.equal(names.length, 6);
    assert.deepEqual(events[1].event.info, { name: 'Ann' });
    assert.equal(events[2].event.info, undefined, 'no info: none sent');
    for (const { event } of events) assert.ok(Math.abs(event.time_ms - Date.now()) < 60000);
    assert.equal(readLog(endpoint.log).rejected.length, 0);
    assert.ok((await metric(sc, 'comet_webhook_events_total{result="sent"}')) >= 6);
    assert.equal(await metric(sc, 'comet_webhook_events_total{result="dropped"}'), 0);
    assert.equal(await metric(sc, 'comet_webhook_queue'), 0);
  });

  test('the verifier refuses a tampered body, a wrong secret and a stale timestamp', async () => {
    const body = JSON.stringify({ time_ms: Date.now(), events: [{ name: 'channel_occupied', channel: 'presence:x', time_ms: 1 }] });
    const post = (payload, { secret = WEBHOOK_SECRET, timestamp = Math.floor(Date.now() / 1000), signedBody = payload } = {}) =>
      fetch(endpoint.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-Comet-Webhook-Id': 'test',
          'X-Comet-Timestamp': String(timestamp),
          'X-Comet-Signature': 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${signedBody}`).digest('hex'),
        },
        body: payload,
      });
    const before = readLog(endpoint.log).rejected.length;
    assert.equal((await post(body)).status, 200, 'a request signed like the sidecar signs is accepted');
    assert.equal((await post(body.replace('presence:x', 'presence:y'), { signedBody: body })).status, 403);
    assert.equal((await post(body, { secret: 'not-the-secret' })).status, 403);
    assert.equal((await post(body, { timestamp: Math.floor(Date.now() / 1000) - 301 })).status, 403);
    const rejected = readLog(endpoint.log).rejected.slice(before).map((r) => r.rejected);
    assert.equal(rejected.length, 3);
    assert.match(rejected[0], /signature/);
    assert.match(rejected[1], /signature/);
    assert.match(rejected[2], /timestamp/);
  });
});

describe('webhooks while the endpoint is down', () => {
  let dir;
  let sc;
  let endpoint;
  after(async () => {
    await sc?.stop();
    await endpoint?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('not started yet, stopped, answering 500: every event arrives once it is back', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'comet-webhooks-down-'));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/webhook.php`;
    sc = await startSidecar(sidecarFlags(url));
    const log = path.join(dir, 'webhooks.log');
    const ch = uniqueChannel('presence:down');
    const failed = () => metric(sc, 'comet_webhook_requests_total{result="failed"}');
    const expected = [];

    // 1. Not started yet: connection refused, retried.
    const a = await member(sc, ch, 'a');
    expected.push('channel_occupied', 'member_added:a');
    await waitUntil(async () => (await failed()) >= 1, { timeoutMs: 5000, what: 'a refused attempt' });
    endpoint = await startEndpoint(port, dir);
    await waitUntil(() => readLog(log).events.length >= 2, { timeoutMs: 10000, what: 'the events after the start' });

    // 2. Stopped: the next events wait, then arrive once it is back.
    await endpoint.stop();
    const failedBefore = await failed();
    const b = await member(sc, ch, 'b');
    expected.push('member_added:b');
    await waitUntil(async () => (await failed()) > failedBefore, { timeoutMs: 5000, what: 'a refused attempt' });
    endpoint = await startEndpoint(port, dir);
    await waitUntil(() => readLog(log).events.length >= 3, { timeoutMs: 15000, what: 'the events after the restart' });

    // 3. Answering 500: the same batch (same id) again until it answers 200.
    writeFileSync(log + '.fail', '');
    await closeWs(a);
    expected.push('member_removed:a');
    await waitUntil(() => readLog(log).attempts.some((t) => t.answer === 500), { timeoutMs: 5000, what: 'a 500' });
    unlinkSync(log + '.fail');
    await waitUntil(() => readLog(log).events.length >= 4, { timeoutMs: 15000, what: 'the event after the 500s' });
    await closeWs(b);
    expected.push('member_removed:b', 'channel_vacated');
    await waitUntil(() => readLog(log).events.length >= 6, { timeoutMs: 10000, what: 'the last events' });
    await delay(GRACE_MS + 500);

    const { events, attempts } = readLog(log);
    assertNoDuplicates(events, attempts);
    assert.deepEqual(
      events.map(({ event: e }) => `${e.name}${e.user_id ? ':' + e.user_id : ''}`),
      expected,
    );
    const failedIds = attempts.filter((t) => t.answer === 500).map((t) => t.id);
    const okIds = new Set(attempts.filter((t) => t.answer === 200).map((t) => t.id));
    for (const id of failedIds) assert.ok(okIds.has(id), `the batch ${id} answered 500 was sent again with its id`);
    const sent = await metric(sc, 'comet_webhook_events_total{result="sent"}');
    const failures = await failed();
    const ok = await metric(sc, 'comet_webhook_requests_total{result="ok"}');
    assert.equal(sent, 6);
    assert.equal(await metric(sc, 'comet_webhook_events_total{result="dropped"}'), 0);
    const replays = attempts.filter((t) => t.replay).length;
    console.log(`webhook deliveries: ${sent} events sent in ${ok} requests, ${failures} failed attempts retried, ` +
      `${replays} batches sent again after the endpoint had them (skipped by their id), ` +
      `${events.length - new Set(events.map((e) => key(e.event))).size} events processed twice`);
  });
});

/** An endpoint that accepts connections and never answers; counts the connections. */
async function startSilentEndpoint() {
  const sockets = new Set();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/webhook.php`,
    connections: () => connections,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** SIGTERM; resolves with how long the exit took (ms), once it exited 0, sanitizers clean. */
async function timedStop(sc) {
  const started = Date.now();
  await sc.stop();
  return Date.now() - started;
}

// 1 s for the connections' goodbyes, 5 s for the webhooks, and room for an ASan build.
const STOP_BOUND_MS = 1000 + 5000 + 1500;

describe('webhooks on a graceful stop', () => {
  let dir;
  let endpoint;
  let silent;
  const sidecars = [];
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'comet-webhooks-stop-'));
  });
  after(async () => {
    for (const sc of sidecars) sc.kill();
    await endpoint?.stop();
    await silent?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('SIGTERM delivers what is queued and the leaves of the last members before the exit', async () => {
    endpoint = await startEndpoint(await freePort(), dir);
    // A minute's grace: without the stop, no leave would be due for a minute.
    const sc = await startSidecar(sidecarFlags(endpoint.url, '60s'));
    sidecars.push(sc);
    const ch = uniqueChannel('presence:stop');
    await member(sc, ch, '1', { name: 'Ann' });
    await member(sc, ch, '2');
    // At once: the joins may still be waiting for company in the sender's queue.
    const took = await timedStop(sc);
    const events = readLog(endpoint.log).events.filter((e) => e.event.channel === ch);
    assertNoDuplicates(events);
    const names = events.map(({ event: e }) => `${e.name}${e.user_id ? ':' + e.user_id : ''}`);
    assert.deepEqual(names.slice(0, 3), ['channel_occupied', 'member_added:1', 'member_added:2']);
    assert.deepEqual(names.slice(3, 5).sort(), ['member_removed:1', 'member_removed:2']);
    assert.deepEqual(names.slice(5), ['channel_vacated']);
    assert.doesNotMatch(sc.stderr, /dropped/);
    console.log(`graceful stop with the endpoint up: ${names.length} events delivered, exit after ${took} ms`);
  });

  test('an endpoint that is down holds up the exit at most 5 s; the drop is logged with its count', async () => {
    const url = `http://127.0.0.1:${await freePort()}/webhook.php`; // nothing listens
    const sc = await startSidecar(sidecarFlags(url, '60s'));
    sidecars.push(sc);
    await member(sc, uniqueChannel('presence:down-stop'), 'a');
    await waitUntil(async () => (await metric(sc, 'comet_webhook_requests_total{result="failed"}')) >= 1, {
      what: 'a refused attempt',
    });
    const took = await timedStop(sc);
    // channel_occupied and member_added (being retried), member_removed and channel_vacated.
    assert.match(sc.stderr, /webhooks: stopping: 4 events not delivered to http:\/\/127\.0\.0\.1:\d+\/webhook\.php within \d+ ms \(dropped\)/);
    assert.ok(took < STOP_BOUND_MS, `the exit took ${took} ms`);
    console.log(`graceful stop with the endpoint down (refused): 4 events dropped, exit after ${took} ms`);
  });

  test('an endpoint that never answers is given up at the 5 s bound, not --webhook-timeout', async () => {
    silent = await startSilentEndpoint();
    const sc = await startSidecar([...sidecarFlags(silent.url, '60s'), '--webhook-timeout', '60s']);
    sidecars.push(sc);
    await member(sc, uniqueChannel('presence:silent'), 'a');
    await waitUntil(() => silent.connections() >= 1, { what: 'the request on its way' });
    const took = await timedStop(sc);
    assert.match(sc.stderr, /webhooks: stopping: 4 events not delivered to .* within \d+ ms \(dropped\)/);
    assert.ok(took >= 5000, `the exit took ${took} ms: before the bound`);
    assert.ok(took < STOP_BOUND_MS, `the exit took ${took} ms`);
    console.log(`graceful stop with an endpoint that never answers: 4 events dropped, exit after ${took} ms`);
  });
});

describe('webhooks from two sidecars sharing Redis', () => {
  let dir;
  let endpoint;
  let redis;
  const sidecars = [];
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'comet-webhooks-redis-'));
    endpoint = await startEndpoint(await freePort(), dir);
    redis = await RedisServer.start();
    for (let i = 0; i < 2; i++) sidecars.push(await startRedisSidecar(redis, sidecarFlags(endpoint.url)));
  });
  after(async () => {
    for (const sc of sidecars) await sc.stop();
    await redis?.stop();
    await endpoint?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('each transition is sent once in all, by the sidecar that made it', async () => {
    const ch = uniqueChannel('presence:two');
    const [a, b] = sidecars;
    // Ann with a tab on each sidecar is one member; Bob only on the second.
    const annA = await member(a, ch, 'ann', { name: 'Ann' });
    const annB = await member(b, ch, 'ann', { name: 'Ann' });
    const bob = await member(b, ch, 'bob');
    await closeWs(annA);
    await delay(GRACE_MS + 1000); // Ann's tab on b keeps her a member
    await closeWs(annB);
    await closeWs(bob);
    const ours = () => readLog(endpoint.log).events.filter((e) => e.event.channel === ch);
    await waitUntil(() => ours().length >= 6, { timeoutMs: 15000, what: '6 events for ' + ch });
    await delay(GRACE_MS + 1500); // nothing more comes
    const events = ours();
    assertNoDuplicates(events);
    const names = events.map(({ event: e }) => `${e.name}${e.user_id ? ':' + e.user_id : ''}`);
    assert.deepEqual(names.slice(0, 3), ['channel_occupied', 'member_added:ann', 'member_added:bob']);
    assert.deepEqual(names.slice(3, 5).sort(), ['member_removed:ann', 'member_removed:bob']);
    assert.deepEqual(names.slice(5), ['channel_vacated']);
    const sentBy = await Promise.all(sidecars.map((sc) => metric(sc, 'comet_webhook_events_total{result="sent"}')));
    assert.equal(sentBy[0] + sentBy[1], 6, `sent per sidecar: ${sentBy}`);
    console.log(`two sidecars: ${events.length} events delivered once each (sent by sidecar a: ${sentBy[0]}, b: ${sentBy[1]})`);
  });

  test("a graceful stop makes no events: its members' entries expire and are swept once", { timeout: 60000 }, async () => {
    const [, b] = sidecars;
    const c = await startRedisSidecar(redis, sidecarFlags(endpoint.url, '60s'));
    const ch = uniqueChannel('presence:rolling');
    await member(c, ch, 'carl');
    const carlB = await member(b, ch, 'carl'); // carl stays, on b
    await member(c, ch, 'dan'); // dan was only on c
    const ours = () => readLog(endpoint.log).events.filter((e) => e.event.channel === ch);
    const names = () => ours().map(({ event: e }) => `${e.name}${e.user_id ? ':' + e.user_id : ''}`);
    await waitUntil(() => ours().length >= 3, { timeoutMs: 10000, what: 'the joins' });
    await c.stop();
    await delay(1500);
    assert.deepEqual(names(), ['channel_occupied', 'member_added:carl', 'member_added:dan'], 'the stop itself makes no event');
    // dan's entry expires (ttl 15 s) and a remaining sidecar sweeps it: one member_removed;
    // carl, still on b, is never removed.
    await waitUntil(() => ours().length >= 4, { timeoutMs: 25000, intervalMs: 200, what: "dan's leave" });
    await delay(1500);
    assertNoDuplicates(ours());
    assert.deepEqual(names().slice(3), ['member_removed:dan']);
    await closeWs(carlB);
  });
});

describe('webhook settings', () => {
  test('a URL without a secret stops the sidecar (exit 2, saying why)', async () => {
    await assert.rejects(
      startSidecar(['--webhook-url', 'http://127.0.0.1:9/webhook.php']),
      /--webhook-url needs --webhook-secret/,
    );
  });
});

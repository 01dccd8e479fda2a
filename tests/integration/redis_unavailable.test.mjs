// No silent hang (issue 14, item 6): while Redis cannot be reached, a new subscription
// waits for its channel to be read for a bounded time (5 s, checked every second) and is
// then answered: SSE, streams and polls with 503 (Retry-After), a WebSocket channel with
// {"type":"error","error":"unavailable","status":503} (the socket stays open). Once Redis
// is back the same requests work again.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { RedisServer, startRedisSidecar, waitForEvent, waitHealth, wsSubscriber } from './lib/redis.mjs';
import { rawRequest, uniqueChannel } from './lib/sidecar.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

test('subscriptions on an unreachable Redis are answered within the bound, and work once it is back', async () => {
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  const sc = await startRedisSidecar(redis, ['--workers', '1']);
  cleanups.push(() => sc.stop());
  await redis.kill();
  await waitHealth(sc, 'degraded');

  const ch = uniqueChannel('down');
  const get = (target) => rawRequest(sc.port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeoutMs: 15000 });
  const [sse, poll, stream, ws] = await Promise.all([
    timed(() => get(`/sse?ch=${ch}`)),
    timed(() => get(`/poll?ch=${ch}&wait=0`)),
    timed(() => get(`/stream?ch=${ch}&format=xhr`)),
    timed(async () => {
      const sub = await wsSubscriber(sc, { name: 'ws', query: { ch } });
      cleanups.push(() => sub.close());
      return { sub, error: await waitForEvent(sub, (e) => e.kind === 'error', 'the unavailable error', 15000) };
    }),
  ]);
  for (const [name, r] of [['sse', sse], ['poll', poll], ['stream', stream]]) {
    assert.equal(r.value.status, 503, `${name}: ${r.value.body}`);
    assert.equal(r.value.headers['retry-after'], '2');
    assert.match(r.value.json.error, /unavailable/);
    assert.ok(r.ms < 8000, `${name} answered after ${Math.round(r.ms)} ms`);
  }
  assert.deepEqual([ws.value.error.error, ws.value.error.ch, ws.value.error.status], ['unavailable', ch, 503]);
  assert.ok(ws.ms < 8000, `ws answered after ${Math.round(ws.ms)} ms`);
  assert.ok(!ws.value.sub.closedUnexpectedly(), 'the socket stays open');
  console.log(
    `unavailable: answered after sse ${Math.round(sse.ms)} ms, poll ${Math.round(poll.ms)} ms, ` +
      `stream ${Math.round(stream.ms)} ms, ws ${Math.round(ws.ms)} ms (bound 5 s, checked every second)`,
  );

  await redis.restart();
  await waitHealth(sc, 'ok');
  const back = await get(`/poll?ch=${ch}&wait=0`);
  assert.equal(back.status, 200, back.body);
  // The same socket subscribes again and is confirmed.
  ws.value.sub.send({ cmd: 'sub', ch: [ch] });
  await waitForEvent(ws.value.sub, (e) => e.kind === 'subscribed', 'the subscription once Redis is back');
});

// HTTP request/response paths with Redis behind them: a plain poll (wait=0) on a channel
// the worker has not read from Redis yet still answers with what Redis retains, and
// publishes sent by a client that half-closes its socket are all published and answered.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openWs } from './lib/clients.mjs';
import { publishOk, sendAndHalfClose, uniqueChannel } from './lib/sidecar.mjs';
import { RedisServer, runCleanups, startRedisSidecar } from './lib/redis.mjs';

describe('redis: request/response endpoints', () => {
  const cleanups = [];
  let a;
  let b;

  before(async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    a = await startRedisSidecar(redis, ['--workers', '1']);
    cleanups.push(() => a.stop());
    // B pipelines publishes with a poll on its public listener: that needs the key.
    b = await startRedisSidecar(redis, ['--workers', '1', '--poll-timeout', '1s', '--publish-key', 'k']);
    cleanups.push(() => b.stop());
  });
  after(() => runCleanups(cleanups));

  test('poll wait=0 on a channel not yet read from Redis answers with the retained messages', async () => {
    const ch = uniqueChannel('poll0');
    for (let i = 1; i <= 3; i++) await publishOk(a, ch, `m${i}`);
    // Instance B has never seen the channel: its first poll must wait for the sync.
    const res = await fetch(`${b.url}/poll?ch=${ch}&wait=0&cursor=${ch}@.0`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(body.messages.map((m) => m.data), ['m1', 'm2', 'm3']);
    assert.match(body.cursor, new RegExp(`^${ch}@[0-9a-z]+\\.3$`));
    // And with nothing after the cursor it answers at once, empty.
    const again = await (await fetch(`${b.url}/poll?ch=${ch}&wait=0&cursor=${encodeURIComponent(body.cursor)}`)).json();
    assert.deepEqual(again.messages, []);
  });

  test('five pipelined publishes from a half-closed client are all published and answered', async () => {
    const ch = uniqueChannel('halfclose');
    let bytes = '';
    for (let i = 1; i <= 5; i++)
      bytes += `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nm${i}`;
    const answer = await sendAndHalfClose(a.publishPort, bytes);
    const ids = [...answer.matchAll(/"id":(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(ids, [1, 2, 3, 4, 5], answer);
    const poll = await (await fetch(`${a.url}/poll?ch=${ch}&wait=0&cursor=${ch}@.0`)).json();
    assert.deepEqual(poll.messages.map((m) => m.data), ['m1', 'm2', 'm3', 'm4', 'm5']);
  });

  test('pipelined publishes go to Redis together and are answered in order, with what follows', async () => {
    // Publishes behind one still in Redis are sent at once (the subscriber gets them in
    // one burst); a refused publish, a non-publish request and a malformed one that
    // follow are answered in their place, after the answers still owed.
    const ch = uniqueChannel('pipe');
    const ws = await openWs(`${a.wsUrl}/ws?ch=${ch}`);
    try {
      await ws.messages.take();  // subscribed
      const pub = (body, target = ch) =>
        `POST /pub/${target} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      let bytes = '';
      for (let i = 1; i <= 40; i++) bytes += pub(`p${i}`);
      bytes += pub('x', 'bad*name');  // 400 (invalid channel), answered in its place
      for (let i = 41; i <= 50; i++) bytes += pub(`p${i}`);
      bytes += 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';  // waits for the publishes
      bytes += pub('p51');
      bytes += 'BROKEN\r\n\r\n';  // 400 and a close, after everything before it
      const answer = await sendAndHalfClose(a.publishPort, bytes);
      const statuses = [...answer.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => Number(m[1]));
      assert.deepEqual(statuses, [...Array(40).fill(200), 400, ...Array(10).fill(200), 200, 200, 400]);
      const ids = [...answer.matchAll(/"id":(\d+)/g)].map((m) => Number(m[1]));
      assert.deepEqual(ids, Array.from({ length: 51 }, (_, i) => i + 1));
      assert.match(answer, /"status":"(ok|degraded)"/);
      const got = await ws.messages.takeN(51, 10000);
      assert.deepEqual(got.map((m) => m.data), Array.from({ length: 51 }, (_, i) => `p${i + 1}`));
    } finally {
      ws.ws.terminate();
    }
  });

  test('a long-poll parked behind pipelined publishes, then a half-close: published, then it times out', async () => {
    // The long-poll is held back until the publishes are answered; the client's FIN came
    // meanwhile, and the held poll must still time out (and the connection then close).
    const ch = uniqueChannel('parked-lp');
    const pub = (body) => `POST /pub/${ch}?key=k HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const started = Date.now();
    const answer = await sendAndHalfClose(
      b.port,
      pub('one') + pub('two') + `GET /poll?ch=${ch} HTTP/1.1\r\nHost: x\r\n\r\n`,
      6000,
    );
    const elapsed = Date.now() - started;
    const statuses = [...answer.matchAll(/^HTTP\/1\.1 (\d+)/gm)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 200, 200], answer);
    assert.ok(answer.includes('"messages":[]'), answer);
    assert.ok(elapsed >= 900 && elapsed < 5000, `answered after ${elapsed} ms with --poll-timeout 1s`);
  });
});

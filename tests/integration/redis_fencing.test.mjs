// Fencing (issue 14, item 4): a promoted replica that missed writes must never make a
// sidecar deliver a different message under an id it already delivered. Redis A is the
// master, B its replica; the sidecar reaches "Redis" through a TCP relay (standing in for
// a failover's address switch). B is cut off from A after message 3, A takes more, then
// the relay switches to B:
//   * behind: B's head is 3 while 4 and 5 were delivered;
//   * rewritten: B took other messages under ids 4 and 5 meanwhile (a publisher on B).
// The sidecar must move the channel to a new epoch (subscribers get an epoch-changed
// reset) instead of publishing 4 and 5 again; a client resuming from the old epoch is
// reset too, and no subscriber ever sees one id with two payloads.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, test } from 'node:test';

import {
  channelKeys,
  health,
  loadPublishScript,
  luaPublish,
  messagesOf,
  RedisServer,
  sseSubscriber,
  startRedisSidecar,
  waitForEvent,
  waitForId,
  wsSubscriber,
} from './lib/redis.mjs';
import { publishOk, uniqueChannel, waitUntil } from './lib/sidecar.mjs';

/** A TCP relay to one Redis; switchTo() points it at another and drops every pair. */
class Relay {
  static async start(targetPort) {
    const relay = new Relay(targetPort);
    await new Promise((resolve) => relay.server.listen(0, '127.0.0.1', resolve));
    relay.port = relay.server.address().port;
    return relay;
  }

  constructor(targetPort) {
    this.target = targetPort;
    this.pairs = new Set();
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      const pair = [client, upstream];
      this.pairs.add(pair);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  switchTo(targetPort) {
    this.target = targetPort;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async close() {
    this.switchTo(this.target);
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Each (epoch, id) a subscriber received maps to one payload. */
function assertNoIdReused(sub) {
  const seen = new Map();
  for (const e of sub.events.items) {
    if (e.kind !== 'msg') continue;
    const key = `${e.epoch}.${e.id}`;
    if (seen.has(key)) assert.equal(e.data, seen.get(key), `${sub.name}: ${key} delivered with two payloads`);
    seen.set(key, e.data);
  }
}

for (const scenario of ['behind', 'rewritten']) {
  describe(`fencing after a failover to a replica that missed writes (${scenario})`, () => {
    const cleanups = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    test('subscribers get an epoch-changed reset, never a reused id, and every later message once', async () => {
      const a = await RedisServer.start();
      const b = await RedisServer.start();
      cleanups.push(() => a.stop(), () => b.stop());
      const bc = await b.client();
      await bc.command('REPLICAOF', '127.0.0.1', String(a.port));
      const relay = await Relay.start(a.port);
      cleanups.push(() => relay.close());
      const sc = await startRedisSidecar(relay, ['--workers', '1']);
      cleanups.push(() => sc.stop());

      const ch = uniqueChannel(`fence-${scenario}`);
      const ws = await wsSubscriber(sc, { name: 'ws', query: { ch } });
      const sse = sseSubscriber(sc.url, { ch, name: 'sse' });
      cleanups.push(() => ws.close(), () => sse.close());
      await sse.opened();
      await waitForEvent(ws, (e) => e.kind === 'subscribed', 'subscribed');

      for (let i = 1; i <= 3; i++) await publishOk(sc, ch, `m${i}`);
      const [, , logKey] = channelKeys(ch);
      await waitUntil(async () => Number(await bc.command('XLEN', logKey)) === 3, { what: 'the replica to have 3' });
      await bc.command('REPLICAOF', 'NO', 'ONE'); // cut off: misses what follows
      let epoch;
      for (let i = 4; i <= 5; i++) epoch = (await publishOk(sc, ch, `m${i}`)).epoch;
      for (const sub of [ws, sse]) await waitForId(sub, 5, { epoch });
      if (scenario === 'rewritten') {
        // A publisher on B (the PHP client, say) reuses ids 4 and 5 for other messages.
        const sha = await loadPublishScript(bc);
        const x4 = await luaPublish(bc, sha, ch, 'x4');
        const x5 = await luaPublish(bc, sha, ch, 'x5');
        assert.deepEqual([x4.id, x5.id, x5.epoch], [4, 5, epoch], 'B reuses the ids in the same epoch');
      }

      // The failover: the address now leads to B.
      relay.switchTo(b.port);
      await waitUntil(async () => (await health(sc)).fences >= 1, { timeoutMs: 20000, what: 'the sidecar to fence the channel' });
      const fresh = await bc.command('GET', channelKeys(ch)[1]);
      assert.notEqual(fresh, epoch, 'the channel has a new epoch in Redis');

      const after = [];
      for (let i = 6; i <= 8; i++) after.push(await publishOk(sc, ch, `m${i}`));
      assert.ok(after.every((r) => r.epoch === fresh), 'later publishes are in the new epoch');
      for (const sub of [ws, sse]) {
        await waitForId(sub, after.at(-1).id, { epoch: fresh });
        const reset = sub.events.items.find((e) => e.kind === 'reset');
        assert.equal(reset?.reason, 'epoch-changed', `${sub.name} was told of the new epoch`);
        const resets = sub.events.items.filter((e) => e.kind === 'reset').map((e) => e.reason);
        assert.deepEqual(resets, ['epoch-changed'], `${sub.name}: one reset (no history-expired for ids the new epoch never had)`);
        const later = sub.events.items.filter((e) => e.kind === 'msg' && e.epoch === fresh).map((e) => e.data);
        assert.deepEqual(later, ['m6', 'm7', 'm8'], `${sub.name}: every later message once, in order`);
        assert.ok(!sub.events.items.some((e) => e.kind === 'msg' && /^x/.test(e.data)), `${sub.name}: nothing under a reused id`);
        assertNoIdReused(sub);
      }

      // A client resuming with the old epoch's cursor is reset, then gets the new epoch.
      const resumed = await wsSubscriber(sc, { name: 'resumed', query: { ch, cursor: `${ch}@${epoch}.5` } });
      cleanups.push(() => resumed.close());
      const notice = await waitForEvent(resumed, (e) => e.kind === 'reset', 'a reset');
      assert.equal(notice.reason, 'epoch-changed');
      await waitForId(resumed, after.at(-1).id, { epoch: fresh });
      assertNoIdReused(resumed);
      console.log(`fencing (${scenario}): old epoch ${epoch} delivered 1..5; Redis after the switch ${scenario === 'behind' ? 'had 1..3' : 'had other messages under 4..5'}; fenced to ${fresh}; later ids ${after.map((r) => r.id).join(',')}; fences ${(await health(sc)).fences}`);
    });
  });
}

describe('a client that resumes ahead of what Redis holds', () => {
  const cleanups = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('a cursor from the old master at a sidecar that only knows the replica: that client is reset, never skips a reused id', async () => {
    const a = await RedisServer.start();
    const b = await RedisServer.start();
    cleanups.push(() => a.stop(), () => b.stop());
    const bc = await b.client();
    await bc.command('REPLICAOF', '127.0.0.1', String(a.port));
    const onA = await startRedisSidecar(a, ['--workers', '1']);
    cleanups.push(() => onA.stop());
    const ch = uniqueChannel('fence-ahead');
    for (let i = 1; i <= 3; i++) await publishOk(onA, ch, `m${i}`);
    const [, epochKey, logKey] = channelKeys(ch);
    await waitUntil(async () => Number(await bc.command('XLEN', logKey)) === 3, { what: 'the replica to have 3' });
    await bc.command('REPLICAOF', 'NO', 'ONE');
    let last;
    for (let i = 4; i <= 5; i++) last = await publishOk(onA, ch, `m${i}`);
    const epoch = last.epoch;

    // A sidecar on B (the new master) that never saw 4 and 5; B's head is 3.
    const onB = await startRedisSidecar(b, ['--workers', '1']);
    cleanups.push(() => onB.stop());
    const warm = await wsSubscriber(onB, { name: 'warm', query: { ch } });
    cleanups.push(() => warm.close());
    await waitForEvent(warm, (e) => e.kind === 'subscribed', 'subscribed');
    // The client saw 5 on the old master and resumes here.
    const resumed = await wsSubscriber(onB, { name: 'resumed', query: { ch, cursor: `${ch}@${epoch}.5` } });
    cleanups.push(() => resumed.close());
    const notice = await waitForEvent(resumed, (e) => e.kind === 'reset', 'a reset', 15000);
    assert.equal(notice.reason, 'epoch-changed');
    assert.equal(notice.id, 3, 'moved back to the head Redis has');
    const next = await publishOk(onB, ch, 'm6');
    assert.equal(next.id, 4);
    for (const sub of [resumed, warm]) {
      await waitForId(sub, next.id, { epoch });
      assertNoIdReused(sub);
      assert.deepEqual(messagesOf(sub).map((e) => e.data), ['m6'], `${sub.name}: the new message, once`);
    }
    assert.ok(!warm.events.items.some((e) => e.kind === 'reset'), 'the other subscribers are not reset');
    assert.equal((await health(onB)).fences, 0, 'a client cursor never fences the channel');
    console.log(`resumed ahead: cursor ${epoch}.5 at a sidecar on a Redis with head 3: that client reset to ${notice.epoch}.${notice.id}, then m6 as id ${next.id}; fences 0`);
  });

  test('a made-up cursor far ahead resets only that client: no fence, history kept', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const sc = await startRedisSidecar(redis, ['--workers', '1']);
    cleanups.push(() => sc.stop());
    const ch = uniqueChannel('made-up');
    let last;
    for (let i = 1; i <= 3; i++) last = await publishOk(sc, ch, `m${i}`);
    const honest = await wsSubscriber(sc, { name: 'honest', query: { ch } });
    cleanups.push(() => honest.close());
    await waitForEvent(honest, (e) => e.kind === 'subscribed', 'subscribed');
    const attacker = sseSubscriber(sc.url, { ch, cursor: `${ch}@${last.epoch}.999999`, name: 'made-up' });
    cleanups.push(() => attacker.close());
    const notice = await waitForEvent(attacker, (e) => e.kind === 'reset', 'a reset', 15000);
    assert.equal(notice.reason, 'epoch-changed');
    const rc = await redis.client();
    assert.equal(await rc.command('GET', channelKeys(ch)[1]), last.epoch, 'same epoch');
    assert.equal(Number(await rc.command('XLEN', channelKeys(ch)[2])), 3, 'history kept');
    assert.equal((await health(sc)).fences, 0);
    const next = await publishOk(sc, ch, 'm4');
    await waitForId(honest, next.id, { epoch: last.epoch });
    assert.ok(!honest.events.items.some((e) => e.kind === 'reset'), 'the honest subscriber is not reset');
  });
});

describe('fencing while old-epoch messages are still arriving', () => {
  const cleanups = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  test('messages of the left epoch parked during the fence are dropped, not read for ever', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const sc = await startRedisSidecar(redis, ['--workers', '1']);
    cleanups.push(() => sc.stop());
    const ch = uniqueChannel('fence-parked');
    const ws = await wsSubscriber(sc, { name: 'ws', query: { ch } });
    cleanups.push(() => ws.close());
    await waitForEvent(ws, (e) => e.kind === 'subscribed', 'subscribed');
    let last;
    for (let i = 1; i <= 5; i++) last = await publishOk(sc, ch, `m${i}`);
    await waitForId(ws, 5, { epoch: last.epoch });
    // Redis "loses" 4 and 5 (its head goes back to 3); in one step two messages of the
    // old epoch arrive live: another one under 4, and one after 5 (its prev).
    const rc = await redis.client();
    await rc.command('SET', channelKeys(ch)[0], '3');
    const payload = (id, prev, data) =>
      'comet/1 ' + JSON.stringify({ id, prev, epoch: last.epoch, event: '', data, ts: Date.now() });
    await rc.command(
      'EVAL',
      "redis.call('PUBLISH', KEYS[1], ARGV[1]); redis.call('PUBLISH', KEYS[1], ARGV[2])",
      1,
      `comet:{${ch}}`,
      payload(4, 3, 'x4'),
      payload(6, 5, 'x6'),
    );
    await waitUntil(async () => (await health(sc)).fences >= 1, { timeoutMs: 10000, what: 'the fence' });
    const before = (await health(sc)).gaps_filled;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const after = (await health(sc)).gaps_filled;
    assert.ok(after - before <= 2, `no endless stream reads: gaps_filled ${before} -> ${after} in 1.5 s`);
    const next = await publishOk(sc, ch, 'm-next');
    await waitForId(ws, next.id, { epoch: next.epoch });
    assertNoIdReused(ws);
    assert.ok(!messagesOf(ws).some((e) => /^x/.test(e.data) && e.epoch === last.epoch), 'nothing delivered under a reused id');
  });
});

// Redis goes away and comes back: /healthz says "degraded" meanwhile and "ok" after, the
// sidecars keep every client connection open, and subscribers end with every message
// exactly once in order. With persistence (AOF, fsync always) the sequence survives the
// restart; without it the channel restarts in a new epoch and subscribers get an
// epoch-changed reset before its messages.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { publish, publishOk, uniqueChannel } from './lib/sidecar.mjs';
import {
  RedisServer,
  assertExactlyOnce,
  health,
  loadPublishScript,
  luaPublish,
  messagesOf,
  publishRetrying,
  runCleanups,
  sseSubscriber,
  startRedisSidecar,
  summarize,
  waitForId,
  waitHealth,
  wsSubscriber,
} from './lib/redis.mjs';

const BATCH = 50;
const LUA_BATCH = 10;

describe('redis restart', () => {
  const cleanups = [];
  const tallies = [];
  let published = 0;

  after(async () => {
    summarize('redis_restart', tallies, { published });
    await runCleanups(cleanups);
  });

  /** Redis + two sidecars + four subscribers (WebSocket and SSE on each) on a fresh channel. */
  async function setup({ persistence }) {
    const redis = await RedisServer.start({ persistence });
    cleanups.push(() => redis.stop());
    const a = await startRedisSidecar(redis);
    cleanups.push(() => a.stop());
    const b = await startRedisSidecar(redis);
    cleanups.push(() => b.stop());
    const ch = uniqueChannel(persistence ? 'restart-aof' : 'restart-mem');
    const fresh = `${ch}@.0`;
    const subs = [
      await wsSubscriber(a, { name: 'A ws', query: { ch, cursor: fresh } }),
      await wsSubscriber(b, { name: 'B ws', sub: { cmd: 'sub', ch, since: '.0' } }),
      sseSubscriber(a.url, { name: 'A sse json', ch, cursor: fresh, format: 'json' }),
      sseSubscriber(b.url, { name: 'B sse raw', ch, cursor: fresh, format: 'raw' }),
    ];
    cleanups.push(() => Promise.all(subs.map((s) => s.close())));
    for (const s of subs) if (s.kind === 'sse') await s.opened();
    return { redis, a, b, ch, subs };
  }

  /** Publishes "<prefix><i>" for i in 1..n through POST /pub (retrying 503); returns [{id, epoch, data}]. */
  async function publishBatch(sc, ch, prefix, n) {
    const out = [];
    let retries = 0;
    for (let i = 1; i <= n; i++) {
      const data = `${prefix}${i}`;
      const r = await publishRetrying(sc, ch, data);
      retries += r.retries;
      out.push({ id: r.id, epoch: r.epoch, data });
    }
    published += n;
    return { messages: out, retries };
  }

  /**
   * Kills Redis, checks "degraded" and 503 on publish, restarts it, publishes LUA_BATCH
   * messages directly in Redis at once (before the sidecars are back: they must read
   * them from the stream), waits for "ok". Returns those messages.
   */
  async function bounceRedis(redis, sidecars, ch) {
    await redis.kill('SIGKILL');
    for (const sc of sidecars) {
      const body = await waitHealth(sc, 'degraded'); // and HTTP 503 (readiness), asserted there
      assert.ok(body.redis_connections_down > 0, JSON.stringify(body));
      assert.equal(body.bus, 'redis');
      // Liveness stays 200: a supervisor must not restart a sidecar for Redis' outage.
      const live = await fetch(`${sc.url}/livez`);
      assert.equal(live.status, 200);
      assert.deepEqual(await live.json(), { status: 'alive' });
    }
    const refused = await publish(sidecars[0], ch, 'while-down');
    assert.equal(refused.status, 503, `publish while Redis is down: ${refused.status} ${refused.text}`);
    await redis.restart();
    const rc = await redis.client();
    const sha = await loadPublishScript(rc); // a restarted Redis has an empty script cache
    const direct = [];
    for (let i = 1; i <= LUA_BATCH; i++) {
      const r = await luaPublish(rc, sha, ch, `lua-${i}`);
      direct.push({ id: r.id, epoch: r.epoch, data: `lua-${i}` });
    }
    published += LUA_BATCH;
    const downAfterLua = (await health(sidecars[0])).redis_connections_down;
    for (const sc of sidecars) {
      const body = await waitHealth(sc, 'ok');
      assert.equal(body.redis_connections_down, 0, JSON.stringify(body));
    }
    rc.close();
    return { direct, downAfterLua };
  }

  function assertStillConnected(subs) {
    for (const s of subs) {
      assert.equal(s.closedUnexpectedly(), false, `${s.name}: the sidecar kept the connection open`);
      if (s.kind === 'sse') {
        assert.equal(s.client.opens.items.length, 1, `${s.name}: one EventSource connection, never reopened`);
        assert.equal(s.client.errors.items.length, 0, `${s.name}: no EventSource error`);
      }
    }
  }

  test('with persistence: every subscriber ends with all 110 messages (50 + 10 in Redis while the bridge is down + 50), on the same connections', { timeout: 60000 }, async () => {
    const { redis, a, b, ch, subs } = await setup({ persistence: true });
    const first = await publishBatch(a, ch, 'before-', BATCH);
    for (const s of subs) await waitForId(s, BATCH);
    // Every publish was answered, so it is in the AOF (appendfsync always): SIGKILL loses nothing.
    const { direct, downAfterLua } = await bounceRedis(redis, [a, b], ch);
    const second = await publishBatch(a, ch, 'after-', BATCH);
    const epoch = first.messages[0].epoch;
    assert.equal(direct[0].epoch, epoch, 'the sequence survived the restart (same epoch)');
    assert.equal(direct[0].id, BATCH + 1, 'ids continue');
    assert.equal(second.messages[0].epoch, epoch);
    const expected = first.messages.concat(direct, second.messages);
    // A sentinel: anything duplicated would have arrived before it.
    const sentinel = await publishOk(a, ch, 'sentinel');
    for (const s of subs) await waitForId(s, sentinel.id, { epoch });
    for (const s of subs) {
      const t = assertExactlyOnce(s, expected.concat([{ id: sentinel.id, epoch, data: 'sentinel' }]));
      tallies.push({ ...t, published: expected.length, received: t.received - 1 }); // without the sentinel
      assert.equal(s.events.items.filter((e) => e.kind === 'reset').length, 0, `${s.name}: no reset`);
    }
    assertStillConnected(subs);
    const hb = await health(b);
    console.log(
      `redis_restart (aof): ${LUA_BATCH} published in Redis while ${downAfterLua} connections of A were still down; ` +
        `publish retries after "ok" ${second.retries}; gaps filled on B ${hb.gaps_filled}`,
    );
  });

  test('without persistence: a new epoch, an epoch-changed reset, then the new messages, no duplicates', { timeout: 60000 }, async () => {
    const { redis, a, b, ch, subs } = await setup({ persistence: false });
    const first = await publishBatch(a, ch, 'before-', BATCH);
    for (const s of subs) await waitForId(s, BATCH);
    const { direct } = await bounceRedis(redis, [a, b], ch);
    const second = await publishBatch(a, ch, 'after-', BATCH);
    const oldEpoch = first.messages[0].epoch;
    const newEpoch = direct[0].epoch;
    assert.notEqual(newEpoch, oldEpoch, 'Redis lost the sequence: a new epoch');
    const afterRestart = direct.concat(second.messages);
    assert.ok(afterRestart.every((m) => m.epoch === newEpoch));
    assert.deepEqual(afterRestart.map((m) => m.id), Array.from({ length: LUA_BATCH + BATCH }, (_, i) => i + 1), 'ids restart at 1');
    const sentinel = await publishOk(a, ch, 'sentinel');
    for (const s of subs) await waitForId(s, sentinel.id, { epoch: newEpoch });
    for (const s of subs) {
      const t = assertExactlyOnce(
        s,
        first.messages.concat(afterRestart, [{ id: sentinel.id, epoch: newEpoch, data: 'sentinel' }]),
      );
      tallies.push({ ...t, published: BATCH + afterRestart.length, received: t.received - 1 }); // without the sentinel
      // The reset comes exactly between the two epochs.
      const seq = s.events.items.filter((e) => e.kind === 'msg' || e.kind === 'reset');
      const resets = seq.filter((e) => e.kind === 'reset');
      assert.equal(resets.length, 1, `${s.name}: one reset (${JSON.stringify(resets)})`);
      assert.deepEqual(resets[0], { kind: 'reset', ch, reason: 'epoch-changed', epoch: newEpoch, id: 0 }, s.name);
      assert.equal(seq.indexOf(resets[0]), BATCH, `${s.name}: the reset comes after the old epoch's ${BATCH} messages`);
      assert.equal(messagesOf(s)[BATCH].epoch, newEpoch);
    }
    assertStillConnected(subs);
  });
});

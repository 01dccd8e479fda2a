// Fan-out through Redis: two comet-sidecar instances (2 workers each) on one Redis.
// Messages published through POST /pub on one instance and directly in Redis (EVALSHA of
// bridge/lua/publish.lua, as php-client does) reach every subscriber of both instances,
// WebSocket and SSE, exactly once and in id order; a bare PUBLISH arrives live, id-less.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { publishOk, uniqueChannel } from './lib/sidecar.mjs';
import {
  RedisServer,
  assertExactlyOnce,
  loadPublishScript,
  luaPublish,
  messagesOf,
  pubsubName,
  runCleanups,
  sseSubscriber,
  startRedisSidecar,
  summarize,
  waitForEvent,
  waitForId,
  wsSubscriber,
} from './lib/redis.mjs';

const PER_SOURCE = 200;

describe('redis fan-out across two sidecars', () => {
  const cleanups = [];
  let redis;
  let a;
  let b;
  let rc;
  let sha;

  before(async () => {
    redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    a = await startRedisSidecar(redis);
    cleanups.push(() => a.stop());
    b = await startRedisSidecar(redis);
    cleanups.push(() => b.stop());
    rc = await redis.client();
    sha = await loadPublishScript(rc);
  });

  after(() => runCleanups(cleanups));

  test('400 messages from /pub and EVALSHA reach every subscriber exactly once, in order', { timeout: 60000 }, async () => {
    const ch = uniqueChannel('fan');
    const fresh = `${ch}@.0`; // "before the first message": every message of the channel
    const subs = [];
    for (const [label, sc] of [['A', a], ['B', b]]) {
      subs.push(await wsSubscriber(sc, { name: `${label} ws query`, query: { ch, cursor: fresh } }));
      subs.push(await wsSubscriber(sc, { name: `${label} ws cmd`, sub: { cmd: 'sub', ch, since: '.0' } }));
      subs.push(sseSubscriber(sc.url, { name: `${label} sse json`, ch, cursor: fresh, format: 'json' }));
      subs.push(sseSubscriber(sc.url, { name: `${label} sse raw`, ch, cursor: fresh, format: 'raw', isBare: (d) => d === 'hello' }));
    }
    cleanups.push(() => Promise.all(subs.map((s) => s.close())));
    for (const s of subs) if (s.kind === 'sse') await s.opened();

    // Both sources at once, so their ids interleave.
    const viaPub = [];
    const viaLua = [];
    await Promise.all([
      (async () => {
        for (let i = 0; i < PER_SOURCE; i++) {
          const data = `pub-${i}`;
          const r = await publishOk(a, ch, data);
          viaPub.push({ id: r.id, epoch: r.epoch, data });
        }
      })(),
      (async () => {
        for (let i = 0; i < PER_SOURCE; i++) {
          const data = `lua-${i}`;
          const r = await luaPublish(rc, sha, ch, data);
          assert.equal(r.prev, r.id - 1);
          viaLua.push({ id: r.id, epoch: r.epoch, data });
        }
      })(),
    ]);
    const expected = [...viaPub, ...viaLua].sort((x, y) => x.id - y.id);
    const total = 2 * PER_SOURCE;
    assert.deepEqual(
      expected.map((m) => m.id),
      Array.from({ length: total }, (_, i) => i + 1),
      'ids are 1..400, each assigned once',
    );
    const epoch = expected[0].epoch;
    assert.ok(expected.every((m) => m.epoch === epoch), 'one epoch');

    for (const s of subs) await waitForId(s, total, { epoch });

    // A bare PUBLISH of any other payload is delivered live, without id.
    const receivers = await rc.command('PUBLISH', pubsubName(ch), 'hello');
    assert.ok(receivers >= 2, `PUBLISH reached ${receivers} Redis subscribers (expected one per worker with subscribers, >= 2)`);
    for (const s of subs) {
      const bare = await waitForEvent(s, (e) => e.kind === 'bare', 'the bare PUBLISH');
      assert.equal(bare.data, 'hello', s.name);
      if (s.kind === 'ws' || s.name.endsWith('json')) assert.deepEqual(bare.raw, { ch, data: 'hello' }, `${s.name}: id-less envelope`);
    }

    // A sentinel after everything: whatever was duplicated would have arrived by now.
    const sentinel = await publishOk(a, ch, 'sentinel');
    assert.equal(sentinel.id, total + 1);
    for (const s of subs) await waitForId(s, total + 1, { epoch });

    const tallies = [];
    for (const s of subs) {
      const msgs = messagesOf(s);
      assert.equal(msgs.at(-1).data, 'sentinel', `${s.name}: the sentinel comes last`);
      const t = assertExactlyOnce(s, expected.concat([{ id: sentinel.id, epoch, data: 'sentinel' }]));
      tallies.push({ ...t, published: total, received: t.received - 1 }); // without the sentinel
      // Event order: 400 messages, then the bare one, then the sentinel.
      const kinds = s.events.items.filter((e) => e.kind === 'msg' || e.kind === 'bare').map((e) => e.kind);
      assert.equal(kinds.indexOf('bare'), total, `${s.name}: the bare message comes after id ${total}`);
      assert.equal(kinds.filter((k) => k === 'bare').length, 1, `${s.name}: one bare message`);
      assert.equal(s.events.items.filter((e) => e.kind === 'reset').length, 0, `${s.name}: no reset`);
      assert.equal(s.closedUnexpectedly(), false, `${s.name}: stayed connected`);
    }
    summarize('redis_fanout', tallies, { published: total, extra: `${PER_SOURCE} via /pub on A + ${PER_SOURCE} via EVALSHA; 1 bare PUBLISH received by all` });
  });
});

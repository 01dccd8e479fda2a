// Resume across sidecar instances on one Redis: a client subscribed on instance A goes
// away, messages are published, and it comes back to instance B with its cursor (query
// `cursor=`, the WebSocket `since` command, SSE Last-Event-ID) and gets exactly the missed
// messages in order. Cursors older than the retained history (--history-size 10) get a
// history-expired reset then the retained messages; a cursor of another epoch gets an
// epoch-changed reset.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { publishOk, SseStream, TcpProxy, uniqueChannel } from './lib/sidecar.mjs';
import {
  RedisServer,
  assertExactlyOnce,
  messagesOf,
  runCleanups,
  sseSubscriber,
  startRedisSidecar,
  summarize,
  waitForEvent,
  waitForId,
  wsSubscriber,
} from './lib/redis.mjs';

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('redis resume across instances', () => {
  const cleanups = [];
  const tallies = [];
  let published = 0;
  let redis;
  let a;
  let b;
  let a10;
  let b10;

  before(async () => {
    redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    a = await startRedisSidecar(redis);
    cleanups.push(() => a.stop());
    b = await startRedisSidecar(redis);
    cleanups.push(() => b.stop());
    a10 = await startRedisSidecar(redis, ['--history-size', '10', '--workers', '1']);
    cleanups.push(() => a10.stop());
    b10 = await startRedisSidecar(redis, ['--history-size', '10']);
    cleanups.push(() => b10.stop());
  });

  after(async () => {
    summarize('redis_resume', tallies, { published, extra: 'expected = per-subscriber missed/retained messages' });
    await runCleanups(cleanups);
  });

  /** Publishes ids `from..to` on `sc` as "m<id>"; returns [{id, epoch, data}]. */
  async function publishRange(sc, ch, from, to) {
    const out = [];
    published += to - from + 1;
    for (const id of range(from, to)) {
      const r = await publishOk(sc, ch, `m${id}`);
      assert.equal(r.id, id, `publish answered id ${r.id}, expected ${id}`);
      out.push({ id: r.id, epoch: r.epoch, data: `m${id}` });
    }
    return out;
  }

  /**
   * A WebSocket client on `sc` sees `seen` messages, disconnects, and `missed` more are
   * published on `sc`. Returns {ch, epoch, before, missed}.
   */
  async function seeThenMiss(sc, { seen = 10, missed = 50 } = {}) {
    const ch = uniqueChannel('resume');
    const first = await wsSubscriber(sc, { name: 'first ws', query: { ch, cursor: `${ch}@.0` } });
    const beforeMsgs = await publishRange(sc, ch, 1, seen);
    await waitForId(first, seen);
    assertExactlyOnce(first, beforeMsgs);
    await first.close();
    const missedMsgs = await publishRange(sc, ch, seen + 1, seen + missed);
    return { ch, epoch: beforeMsgs[0].epoch, before: beforeMsgs, missed: missedMsgs };
  }

  /** Waits for `sub` to catch up with `expected` and publishes 5 live ones after; checks all. */
  async function expectMissedThenLive(sub, pubOn, ch, expected) {
    await waitForId(sub, expected.at(-1).id);
    const live = await publishRange(pubOn, ch, expected.at(-1).id + 1, expected.at(-1).id + 5);
    await waitForId(sub, live.at(-1).id);
    const t = assertExactlyOnce(sub, expected.concat(live));
    assert.equal(sub.events.items.filter((e) => e.kind === 'reset').length, 0, `${sub.name}: no reset`);
    tallies.push(t);
    return t;
  }

  test('WebSocket: cursor= in the query on the other instance', { timeout: 30000 }, async () => {
    const { ch, epoch, missed } = await seeThenMiss(a);
    const sub = await wsSubscriber(b, { name: 'B ws cursor', query: { ch, cursor: `${ch}@${epoch}.10` } });
    cleanups.push(() => sub.close());
    await expectMissedThenLive(sub, a, ch, missed);
    await sub.close();
  });

  test('WebSocket: the since command on the other instance', { timeout: 30000 }, async () => {
    const { ch, epoch, missed } = await seeThenMiss(a);
    const sub = await wsSubscriber(b, { name: 'B ws since', sub: { cmd: 'sub', ch, since: `${epoch}.10` } });
    cleanups.push(() => sub.close());
    const subscribed = await waitForEvent(sub, (e) => e.kind === 'subscribed', 'the subscribed answer');
    assert.equal(subscribed.ch, ch);
    await expectMissedThenLive(sub, b, ch, missed);
    await sub.close();
  });

  test('SSE: EventSource reconnects to the other instance with Last-Event-ID', { timeout: 30000 }, async () => {
    const ch = uniqueChannel('resume-sse');
    const proxy = await TcpProxy.start(a.port);
    cleanups.push(() => proxy.close());
    // The URL's cursor is "from the start"; EventSource re-sends this URL on reconnect,
    // and Last-Event-ID must win over it.
    const sub = sseSubscriber(`http://127.0.0.1:${proxy.port}`, { name: 'A->B eventsource', ch, cursor: `${ch}@.0` });
    cleanups.push(() => sub.close());
    await sub.opened();
    const beforeMsgs = await publishRange(a, ch, 1, 10);
    await waitForId(sub, 10);
    assert.equal(messagesOf(sub).at(-1).lastEventId, `${ch}@${beforeMsgs[0].epoch}.10`);

    proxy.hold();
    const acceptedBefore = proxy.accepted;
    proxy.dropAll();
    await sub.client.errors.take(10000); // it noticed, and will reconnect
    await proxy.acceptedQueue.take(10000, (n) => n > acceptedBefore); // it is knocking (held)
    const missed = await publishRange(a, ch, 11, 60);
    proxy.targetPort = b.port; // the reconnect lands on instance B
    proxy.release();
    await sub.client.opens.waitFor((o) => o.length >= 2, 10000, 'the reconnect');
    await waitForId(sub, 60);
    const live = await publishRange(b, ch, 61, 65);
    await waitForId(sub, 65);
    tallies.push(assertExactlyOnce(sub, beforeMsgs.concat(missed, live)));
    assert.equal(sub.events.items.filter((e) => e.kind === 'reset').length, 0, 'no reset');
    await sub.close();

    // The same by hand: Last-Event-ID on a fresh connection to B, against a cursor= that
    // says "from the start".
    const raw = await SseStream.open(b.port, `/sse?ch=${ch}&cursor=${encodeURIComponent(`${ch}@.0`)}`, {
      headers: { 'Last-Event-ID': `${ch}@${beforeMsgs[0].epoch}.10` },
    });
    cleanups.push(() => raw.close());
    assert.equal(raw.response.status, 200);
    const got = [];
    for (let i = 0; i < 55; i++) got.push(await raw.nextEvent(10000));
    assert.deepEqual(got.map((e) => e.data), range(11, 65).map((id) => `m${id}`));
    assert.equal(got.at(-1).id, `${ch}@${beforeMsgs[0].epoch}.65`);
    raw.close();
  });

  // protocol.md: "A subscription without a cursor starts at the channel's current head",
  // and the SSE id-only event lets "a client that reconnects before any message arrives
  // still resume from the moment it subscribed" ("With Redis, a channel the sidecar is
  // still reading from Redis shows as `@.0` here; a second id-only event follows once its
  // position is known").
  test('SSE without a cursor: the id-only event names the head, a reconnect with it replays nothing older', { timeout: 30000 }, async () => {
    const ch = uniqueChannel('head-sse');
    const old = await publishRange(a, ch, 1, 5); // before the subscription: not for this client
    const epoch = old[0].epoch;
    const first = await SseStream.open(b.port, `/sse?ch=${ch}`);
    cleanups.push(() => first.close());
    const idBlocks = [];
    const known = await first.blocks.take(10000, (blk) => {
      if (blk.id === undefined) return false;
      idBlocks.push(blk.id);
      return blk.id !== `${ch}@.0`;
    });
    first.close();
    assert.equal(known.id, `${ch}@${epoch}.5`, `the id-only events (${JSON.stringify(idBlocks)}) must end at the head`);
    assert.equal(known.data, undefined, 'an id-only event');
    const again = await SseStream.open(b.port, `/sse?ch=${ch}`, { headers: { 'Last-Event-ID': known.id } });
    cleanups.push(() => again.close());
    await publishRange(a, ch, 6, 6);
    const ev = await again.nextEvent(10000);
    again.close();
    assert.equal(ev.data, 'm6', 'resuming from the announced head must not replay m1..m5');
    assert.equal(ev.id, `${ch}@${epoch}.6`);
  });

  // protocol.md, WebSocket: {"type":"subscribed",...} is "the subscription's starting
  // position, sent before its replayed messages (after a reset notice, if any)".
  test('WebSocket subscribed answer: the starting position, after the reset notice', { timeout: 30000 }, async () => {
    const { ch, epoch } = await seeThenMiss(a10, { seen: 5, missed: 25 }); // ids 1..30, 21..30 retained
    const withCursor = await wsSubscriber(b10, { name: 'B10 ws old cursor', query: { ch, cursor: `${ch}@${epoch}.5` } });
    cleanups.push(() => withCursor.close());
    await waitForId(withCursor, 30);
    const noCursor = await wsSubscriber(a10, { name: 'A10 ws no cursor', sub: { cmd: 'sub', ch: [ch] } });
    cleanups.push(() => noCursor.close());
    const subscribed = await waitForEvent(noCursor, (e) => e.kind === 'subscribed', 'the subscribed answer');
    const controls = withCursor.events.items.filter((e) => e.kind !== 'msg').map((e) => `${e.kind} ${e.epoch}.${e.id}`);
    await withCursor.close();
    await noCursor.close();
    assert.deepEqual(
      { oldCursor: controls, noCursor: `${subscribed.epoch}.${subscribed.id}` },
      { oldCursor: [`reset ${epoch}.20`, `subscribed ${epoch}.20`], noCursor: `${epoch}.30` },
      'reset first, then subscribed at the position delivery starts from; without a cursor, the head',
    );
  });

  /** Checks a history-expired reset to `resetId`, then exactly `retained`, then live ones. */
  async function expectExpiredThenRetained(subs, ch, epoch, resetId, retained, publishOn) {
    for (const sub of subs) {
      // Until the last retained message arrives, or a reset says nothing up to it will.
      const last = retained.at(-1).id;
      await sub.events.waitFor(
        (items) => items.some((e) => (e.kind === 'msg' || e.kind === 'reset') && e.id >= last),
        20000,
        `${sub.name} to receive id ${last}`,
      );
      const events = sub.events.items.filter((e) => e.kind === 'reset' || e.kind === 'msg');
      assert.deepEqual(
        events[0],
        { kind: 'reset', ch, reason: 'history-expired', epoch, id: resetId },
        `${sub.name}: a history-expired reset just before the oldest retained message, first`,
      );
      assert.equal(events.filter((e) => e.kind === 'reset').length, 1, `${sub.name}: one reset`);
      tallies.push(assertExactlyOnce(sub, retained));
    }
    const last = retained.at(-1).id;
    const live = await publishRange(publishOn, ch, last + 1, last + 3);
    for (const sub of subs) {
      await waitForId(sub, last + 3);
      assertExactlyOnce(sub, retained.concat(live));
      await sub.close();
    }
  }

  test('a cursor older than the retained history gets history-expired, then the retained messages (other instance)', { timeout: 30000 }, async () => {
    // --history-size 10: the publishing sidecar trims the stream to ~10, every sidecar keeps 10.
    const { ch, epoch, missed } = await seeThenMiss(a10, { seen: 5, missed: 50 }); // ids 1..55
    const retained = missed.filter((m) => m.id > 45);
    assert.equal(retained.length, 10);
    const subs = [
      await wsSubscriber(b10, { name: 'B10 ws cursor', query: { ch, cursor: `${ch}@${epoch}.5` } }),
      await wsSubscriber(b10, { name: 'B10 ws since', sub: { cmd: 'sub', ch, since: `${epoch}.5` } }),
      sseSubscriber(b10.url, { name: 'B10 sse cursor', ch, cursor: `${ch}@${epoch}.5` }),
    ];
    cleanups.push(() => Promise.all(subs.map((s) => s.close())));
    await expectExpiredThenRetained(subs, ch, epoch, 45, retained, a10);
  });

  // a10 has one worker, so the reconnect lands on the worker that served the first
  // subscription and still holds messages 1..5 of the channel in its hub.
  test('a cursor older than the retained history gets history-expired, then the retained messages (same instance and worker)', { timeout: 30000 }, async () => {
    const { ch, epoch, missed } = await seeThenMiss(a10, { seen: 5, missed: 50 }); // ids 1..55
    const retained = missed.filter((m) => m.id > 45);
    const sub = await wsSubscriber(a10, { name: 'A10 ws cursor', query: { ch, cursor: `${ch}@${epoch}.5` } });
    cleanups.push(() => sub.close());
    try {
      await expectExpiredThenRetained([sub], ch, epoch, 45, retained, a10);
    } catch (err) {
      const seen = sub.events.items.map((e) => (e.kind === 'msg' ? e.id : `${e.kind} ${e.reason ?? ''} ${e.epoch}.${e.id}`));
      err.message += `\n${sub.name} received: ${JSON.stringify(seen)}`;
      throw err;
    }
  });

  test('a cursor of another epoch gets epoch-changed, then every retained message', { timeout: 30000 }, async () => {
    const { ch, epoch, before: seen, missed } = await seeThenMiss(a, { seen: 3, missed: 7 }); // ids 1..10
    const all = seen.concat(missed);
    const wrong = epoch === 'zzzz1' ? 'zzzz2' : 'zzzz1';
    const subs = [
      await wsSubscriber(b, { name: 'B ws wrong epoch', query: { ch, cursor: `${ch}@${wrong}.3` } }),
      await wsSubscriber(b, { name: 'B ws since wrong epoch', sub: { cmd: 'sub', ch, since: `${wrong}.8` } }),
      sseSubscriber(b.url, { name: 'B sse wrong epoch', ch, cursor: `${ch}@${wrong}.3` }),
    ];
    cleanups.push(() => Promise.all(subs.map((s) => s.close())));
    for (const sub of subs) {
      await waitForId(sub, 10);
      const events = sub.events.items.filter((e) => e.kind === 'reset' || e.kind === 'msg');
      assert.deepEqual(
        events[0],
        { kind: 'reset', ch, reason: 'epoch-changed', epoch, id: 0 },
        `${sub.name}: an epoch-changed reset first`,
      );
      assert.equal(events.filter((e) => e.kind === 'reset').length, 1, `${sub.name}: one reset`);
      tallies.push(assertExactlyOnce(sub, all));
      await sub.close();
    }
  });
});

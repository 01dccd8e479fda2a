// Subscription churn against Redis: 10,000 subscribe/unsubscribe cycles over a few
// WebSocket sockets (many channel names, repeated names, arrays, duplicates, `since`),
// plus connections opened and closed while subscribed, while messages are published on
// the same channels. Afterwards Redis has no comet subscription left, /healthz counts no
// subscription, delivery still works, and the sidecar exits 0 on SIGTERM (LSan: no leak).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { SseStream, publishOk, uniqueChannel } from './lib/sidecar.mjs';
import { waitUntil } from './lib/async.mjs';
import {
  RedisServer,
  assertExactlyOnce,
  health,
  loadPublishScript,
  luaPublish,
  pubsubName,
  runCleanups,
  sseSubscriber,
  startRedisSidecar,
  summarize,
  waitForId,
  wsSubscriber,
} from './lib/redis.mjs';

const CYCLES = 10000;
const SOCKETS = 4;
const POOL = 300; // channel names; each is subscribed and unsubscribed many times
const WINDOW = 150; // commands in flight per socket

/** Deterministic PRNG (mulberry32), so a failure replays the same sequence. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('redis subscription churn', () => {
  const cleanups = [];
  let redis;
  let sc;
  let rc;
  let sha;
  const prefix = uniqueChannel('churn');
  const pool = Array.from({ length: POOL }, (_, i) => `${prefix}-${i}`);

  before(async () => {
    redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    sc = await startRedisSidecar(redis);
    cleanups.push(() => sc.stop());
    rc = await redis.client();
    sha = await loadPublishScript(rc);
  });

  after(() => runCleanups(cleanups));

  async function noCometSubscriptionsLeft(what) {
    let last;
    await waitUntil(
      async () => {
        const numsub = await rc.command('PUBSUB', 'NUMSUB', ...pool.map(pubsubName));
        const counts = [];
        for (let i = 1; i < numsub.length; i += 2) counts.push(numsub[i]);
        const channels = await rc.command('PUBSUB', 'CHANNELS', 'comet:*');
        const h = await health(sc);
        last = { subscribed: counts.filter((n) => n !== 0).length, channels: channels.slice(0, 5), healthSubs: h.subscriptions };
        return last.subscribed === 0 && channels.length === 0 && h.subscriptions === 0;
      },
      { timeoutMs: 20000, intervalMs: 50, what: `${what}: no comet subscription in Redis nor in /healthz` },
    ).catch((err) => {
      err.message += ` last seen: ${JSON.stringify(last)}`;
      throw err;
    });
  }

  test('10,000 subscribe/unsubscribe cycles leave no subscription behind; delivery still works; clean exit', { timeout: 120000 }, async () => {
    const started = Date.now();
    // Messages keep arriving on the churned channels, so channels sync, park and fetch
    // while they come and go.
    let stopPublishing = false;
    let churnPublished = 0;
    const publisher = (async () => {
      const r = rng(99);
      while (!stopPublishing) {
        await luaPublish(rc, sha, pool[Math.floor(r() * POOL)], `churn-${churnPublished}`);
        churnPublished += 1;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    cleanups.push(async () => {
      stopPublishing = true;
      await publisher.catch(() => {});
    });

    // The command sockets.
    const sockets = [];
    for (let i = 0; i < SOCKETS; i++) sockets.push(await wsSubscriber(sc, { name: `churn ws ${i}` }));
    cleanups.push(() => Promise.all(sockets.map((s) => s.close())));

    let cyclesDone = 0;
    const perSocket = Math.ceil(CYCLES / SOCKETS);
    // Socket 0 waits for every answer before its next command: its "subscribed" comes once
    // the channel is synced with Redis, so its subscriptions and unsubscriptions reach
    // Redis one by one. The others pipeline up to WINDOW commands, so many subscriptions
    // are undone before (or while) their channel syncs; such a subscription gets no
    // "subscribed" answer, but every unsub is answered.
    let subRequests = 0;
    let subscribedAnswers = 0;
    const churnSocket = async (sock, seed, lockstep) => {
      const r = rng(seed);
      const subscribed = new Set();
      let expectedUnsubs = 0;
      let requestedSubs = 0;
      let sent = 0;
      let cycles = 0;
      const counts = { subscribed: 0, unsubscribed: 0 };
      let scanned = 0;
      const count = (kind) => {
        const items = sock.events.items;
        for (; scanned < items.length; scanned++) if (items[scanned].kind in counts) counts[items[scanned].kind] += 1;
        return counts[kind];
      };
      const send = (cmd) => {
        sock.send(cmd);
        sent += 1;
      };
      // Names held by this socket are only touched by the "held" case (a second sub of a
      // held name would not be answered and would end the hold early).
      const pick = () => {
        for (;;) {
          const ch = pool[Math.floor(r() * POOL)];
          if (!subscribed.has(ch)) return ch;
        }
      };
      while (cycles < perSocket) {
        if (lockstep) {
          const ch = pick();
          send({ cmd: 'sub', ch });
          requestedSubs += 1;
          await sock.events.waitFor(() => count('subscribed') >= requestedSubs, 20000, `${sock.name}: subscribed ${ch}`);
          send({ cmd: 'unsub', ch });
          expectedUnsubs += 1;
          await sock.events.waitFor(() => count('unsubscribed') >= expectedUnsubs, 20000, `${sock.name}: unsubscribed ${ch}`);
          cycles += 1;
          continue;
        }
        const kind = r();
        if (kind < 0.6) {
          // single channel
          const ch = pick();
          send({ cmd: 'sub', ch });
          send({ cmd: 'unsub', ch });
          requestedSubs += 1;
          expectedUnsubs += 1;
          cycles += 1;
        } else if (kind < 0.75) {
          // several at once (distinct names)
          const chs = [...new Set([pick(), pick(), pick()])];
          send({ cmd: 'sub', ch: chs });
          send({ cmd: 'unsub', ch: chs });
          requestedSubs += chs.length;
          expectedUnsubs += chs.length;
          cycles += chs.length;
        } else if (kind < 0.85) {
          // subscribed twice (the second keeps the position and is not answered), then once unsubscribed
          const ch = pick();
          send({ cmd: 'sub', ch, since: '.0' });
          send({ cmd: 'sub', ch });
          send({ cmd: 'unsub', ch });
          requestedSubs += 1;
          expectedUnsubs += 1;
          cycles += 1;
        } else {
          // held across other commands: subscribe now, unsubscribe a few commands later
          const ch = pool[Math.floor(r() * POOL)];
          if (subscribed.has(ch)) {
            send({ cmd: 'unsub', ch });
            subscribed.delete(ch);
            expectedUnsubs += 1;
            cycles += 1;
          } else if (subscribed.size < 8) {
            send({ cmd: 'sub', ch });
            subscribed.add(ch);
            requestedSubs += 1;
          } else {
            const [first] = subscribed;
            send({ cmd: 'unsub', ch: first });
            subscribed.delete(first);
            expectedUnsubs += 1;
            cycles += 1;
          }
        }
        if (sent % WINDOW < 3) {
          // Bound what is in flight: wait for the answers to catch up.
          await sock.events.waitFor(() => count('unsubscribed') >= expectedUnsubs - WINDOW / 2, 20000, `${sock.name} answers`);
        }
      }
      for (const ch of subscribed) {
        send({ cmd: 'unsub', ch });
        expectedUnsubs += 1;
        cycles += 1;
      }
      await sock.events.waitFor(() => count('unsubscribed') >= expectedUnsubs, 30000, `${sock.name}: all ${expectedUnsubs} unsub answers`);
      assert.equal(count('unsubscribed'), expectedUnsubs, `${sock.name}: one answer per unsub`);
      assert.ok(count('subscribed') <= requestedSubs, `${sock.name}: at most one "subscribed" per new subscription`);
      if (lockstep) assert.equal(count('subscribed'), requestedSubs, `${sock.name}: every subscription answered`);
      const errors = sock.events.items.filter((e) => e.kind === 'error' || e.kind === 'reset');
      assert.deepEqual(errors, [], `${sock.name}: no error or reset`);
      cyclesDone += cycles;
      subRequests += requestedSubs;
      subscribedAnswers += count('subscribed');
      return sent;
    };

    // Connections opened and closed meanwhile: some while subscribed (never unsubscribed),
    // some cut without a close handshake, some SSE.
    const connectionChurn = async () => {
      const r = rng(7);
      let opened = 0;
      for (let i = 0; i < 60; i++) {
        const chs = [...new Set([pool[Math.floor(r() * POOL)], pool[Math.floor(r() * POOL)]])];
        const mode = i % 3;
        if (mode === 0) {
          const s = await wsSubscriber(sc, { name: `short ws ${i}`, query: { ch: chs.join(',') } });
          await s.close();
        } else if (mode === 1) {
          const s = await wsSubscriber(sc, { name: `cut ws ${i}`, sub: { cmd: 'sub', ch: chs } });
          await waitUntil(() => s.events.items.filter((e) => e.kind === 'subscribed').length === chs.length, {
            timeoutMs: 10000,
            what: `short ws ${i} subscribed`,
          });
          s.ws.terminate(); // no close frame, no unsub
        } else {
          const s = await SseStream.open(sc.port, `/sse?ch=${chs.join(',')}`);
          assert.equal(s.response.status, 200);
          s.close();
        }
        opened += 1;
      }
      return opened;
    };

    const [sentCounts, shortConnections] = await Promise.all([
      Promise.all(sockets.map((s, i) => churnSocket(s, 1000 + i, i === 0))),
      connectionChurn(),
    ]);
    stopPublishing = true;
    await publisher;
    assert.ok(cyclesDone >= CYCLES, `${cyclesDone} cycles`);

    await noCometSubscriptionsLeft('after the churn');
    // How much of the churn reached Redis (a sub and unsub in one loop turn cost it nothing).
    const stats = await rc.command('INFO', 'commandstats');
    const calls = (name) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    const redisSubscribes = calls('subscribe');
    const redisUnsubscribes = calls('unsubscribe');
    assert.ok(redisSubscribes >= 100, `the churn reached Redis: ${redisSubscribes} SUBSCRIBE, ${redisUnsubscribes} UNSUBSCRIBE`);
    const h = await health(sc);
    assert.equal(h.status, 'ok');
    const churnMs = Date.now() - started;

    // Delivery still works, on a churned name and a new one, for WebSocket and SSE.
    const churned = pool[0];
    const fresh = `${prefix}-fresh`;
    const positions = {};
    for (const ch of [churned, fresh]) {
      const [seq, epoch] = await Promise.all([rc.command('GET', `comet:{${ch}}:seq`), rc.command('GET', `comet:{${ch}}:epoch`)]);
      positions[ch] = `${epoch ?? ''}.${seq ?? 0}`;
    }
    const cursor = `${churned}@${positions[churned]},${fresh}@${positions[fresh]}`;
    const ws = await wsSubscriber(sc, { name: 'final ws', query: { cursor } });
    const sse = [churned, fresh].map((ch) => sseSubscriber(sc.url, { name: `final sse ${ch === fresh ? 'fresh' : 'churned'}`, ch, cursor: `${ch}@${positions[ch]}` }));
    cleanups.push(() => Promise.all([ws, ...sse].map((s) => s.close())));
    for (const s of sse) await s.opened();
    const expected = { [churned]: [], [fresh]: [] };
    for (let i = 0; i < 20; i++) {
      for (const ch of [churned, fresh]) {
        const r = await publishOk(sc, ch, `final-${i}`);
        expected[ch].push({ id: r.id, epoch: r.epoch, data: `final-${i}` });
      }
    }
    const tallies = [];
    for (const ch of [churned, fresh]) {
      const last = expected[ch].at(-1);
      const wsView = {
        name: `final ws (${ch === fresh ? 'fresh' : 'churned'})`,
        events: { items: ws.events.items.filter((e) => e.ch === ch) },
      };
      await ws.events.waitFor((items) => items.some((e) => e.kind === 'msg' && e.ch === ch && e.id === last.id), 20000, `final ws: ${ch} id ${last.id}`);
      wsView.events.items = ws.events.items.filter((e) => e.ch === ch);
      tallies.push(assertExactlyOnce(wsView, expected[ch]));
      const s = sse[ch === fresh ? 1 : 0];
      await waitForId(s, last.id, { epoch: last.epoch });
      tallies.push(assertExactlyOnce(s, expected[ch]));
    }
    await Promise.all([ws, ...sse].map((s) => s.close()));
    await noCometSubscriptionsLeft('after the final subscribers left');

    // SIGTERM: exit 0 and no sanitizer report (stop() checks both).
    await sc.stop();
    summarize('redis_churn', tallies, {
      published: 40,
      extra:
        `${cyclesDone} sub/unsub cycles on ${POOL} channels over ${SOCKETS} sockets (${sentCounts.reduce((x, y) => x + y, 0)} commands, ` +
        `${subscribedAnswers} of ${subRequests} subscriptions confirmed before being undone), ` +
        `${shortConnections} short connections, ${churnPublished} messages published meanwhile, ` +
        `${redisSubscribes} SUBSCRIBE / ${redisUnsubscribes} UNSUBSCRIBE commands reached Redis, churn ${churnMs} ms`,
    });
  });
});

// Presence across sidecars while Redis is unreachable (docs/protocol.md, "Presence across
// sidecars (Redis)"): a leave made during an outage waits and is sent once Redis is back;
// a sidecar that missed the leave notice drops the member within a refresh; each event
// once (no second member_added / channel_occupied for members Redis forgot). And the
// scripts keep the sweep's due indexes in step with the entries (no removal race), and
// comet:presence:slots gives each due slot to one sweeper.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

import { openWs, sendJson, closeWs } from './lib/clients.mjs';
import { RedisServer, startRedisSidecar } from './lib/redis.mjs';
import { channelSlot } from './lib/redis_cluster.mjs';
import { delay, uniqueChannel, waitUntil } from './lib/sidecar.mjs';
import { tokenFor } from './lib/tokens.mjs';

const SECRET = 'presence-outage-secret';
const REFRESH_MS = 5000; // PresenceRedis::kRefreshMs
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const script = (name) => readFileSync(path.join(repoRoot, `bridge/lua/presence_${name}.lua`), 'utf8');

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function events(sc) {
  const text = await (await fetch(`${sc.publishUrl}/metrics`)).text();
  const out = {};
  for (const m of text.matchAll(/^comet_presence_events_total\{kind="(\w+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function member(sc, ch, sub) {
  const ws = await openWs(`${sc.wsUrl}/ws?token=${tokenFor(ch, SECRET, { sub })}`);
  sendJson(ws, { cmd: 'sub', ch });
  await ws.messages.take(10000, (m) => m.type === 'members');
  return ws;
}

function known(ws) {
  const ids = new Set();
  for (const m of ws.messages.items) {
    if (m.type === 'members') for (const x of m.members) ids.add(x.id);
    if (m.type === 'join') ids.add(m.member.id);
    if (m.type === 'leave') ids.delete(m.member.id);
  }
  return [...ids].sort();
}

describe('presence through a Redis outage', () => {
  test('a member leaving while Redis is down (restarted empty) leaves everywhere, events once', { timeout: 90000 }, async () => {
    const redis = await RedisServer.start(); // no persistence: restarts empty
    cleanups.push(() => redis.stop());
    const flags = ['--token-secret', SECRET, '--presence-grace', '200ms', '--log-level', 'error'];
    const a = await startRedisSidecar(redis, flags);
    cleanups.push(async () => a.kill());
    const b = await startRedisSidecar(redis, flags);
    cleanups.push(async () => b.kill());
    const ch = `presence:${uniqueChannel('ghost')}`;
    const yan = await member(a, ch, 'yan');
    const xi = await member(b, ch, 'xi');
    await waitUntil(() => known(yan).join() === 'xi,yan', { timeoutMs: 10000, what: 'a knows xi' });
    const sum = async () => {
      const [ea, eb] = [await events(a), await events(b)];
      const out = {};
      for (const k of ['member_added', 'member_removed', 'channel_occupied', 'channel_vacated']) out[k] = (ea[k] ?? 0) + (eb[k] ?? 0);
      return out;
    };
    const before = await sum();

    await redis.kill();
    await closeWs(xi); // xi leaves b while Redis is down
    await delay(1000); // the grace passes: b cannot send the leave yet
    await redis.restart(); // empty
    const backAt = Date.now();
    // Documented: within 10 s of the connections being back (they retry within a second
    // or two); at once here (Redis restarted empty: a's view is read again on resubscribing).
    await waitUntil(() => known(yan).join() === 'yan', {
      timeoutMs: 2 * REFRESH_MS + 3000,
      intervalMs: 100,
      what: "yan (on a) told of xi's leave",
    });
    console.log(`xi's leave reached a ${Date.now() - backAt} ms after Redis came back`);
    // A new subscriber on a lists no ghost; /presence (read from Redis) neither.
    const zed = await member(a, ch, 'zed');
    assert.deepEqual(known(zed), ['yan', 'zed']);
    const q = await (await fetch(`${a.publishUrl}/presence/${ch}`)).json();
    assert.deepEqual(q.members.map((m) => m.id).sort(), ['yan', 'zed']);

    // b's leave waited; it goes a refresh interval after b reconnected.
    await waitUntil(async () => (await sum()).member_removed - before.member_removed >= 1, {
      timeoutMs: 2 * REFRESH_MS + 5000,
      what: 'member_removed of xi',
    });
    await delay(REFRESH_MS + 1000); // refreshes and re-reads: nothing more
    const now = await sum();
    assert.deepEqual(
      {
        removed: now.member_removed - before.member_removed,
        added: now.member_added - before.member_added,
        occupied: now.channel_occupied - before.channel_occupied,
        vacated: now.channel_vacated - before.channel_vacated,
      },
      // zed is the only new member: yan, put back into the empty Redis, is no new one;
      // and the channel never was empty.
      { removed: 1, added: 1, occupied: 0, vacated: 0 },
    );
    assert.deepEqual(known(yan), ['yan', 'zed']);
    await closeWs(yan);
    await closeWs(zed);
    await a.stop();
  });
});

describe('presence scripts keep the due indexes', () => {
  test('join indexes the channel, the vacating leave unindexes it, in the same script as the entry', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const c = await redis.client();
    const ch = `presence:${uniqueChannel('set')}`;
    const due = 'comet:presence:due:{t}'; // any one key will do on a standalone Redis
    const keys = [
      `comet:{${ch}}:presence`,
      `comet:{${ch}}:presence:info`,
      `comet:{${ch}}:presence:count`,
      `comet:{${ch}}:presence:swept`,
      due,
      `comet:{${ch}}:presence:version`,
    ];
    const events = `comet:{${ch}}:presence:events`;
    const run = (name, ...argv) => c.command('EVAL', script(name), keys.length, ...keys, ...argv, 'PUBLISH', events);
    const sweep = () => c.command('EVAL', script('sweep'), 1, due, '100', '100', 'PUBLISH');
    const indexed = async () => (await c.command('ZSCORE', due, ch)) !== null;

    const version = async () => c.command('GET', keys[5]);
    const startedAt = Date.now();
    assert.deepEqual(await run('join', 'i1', 'u', '', '15000', ch, '0'), [1, 1, 1]);
    assert.equal(await indexed(), true);
    // Notices are numbered from the time in ms x 1000 (never back after a DEL).
    const v1 = BigInt(await version());
    assert.ok(v1 >= BigInt(startedAt - 1000) * 1000n && v1 <= BigInt(Date.now() + 1000) * 1000n, `version ${v1}`);
    // The member's leave empties the channel: out of the index; a join puts it back (a
    // separate removal after the leave could undo that join: not any more).
    assert.deepEqual(await run('leave', 'i1', 'u', ch, '0'), [1, 1, '']);
    assert.equal(await indexed(), false);
    // A vacated channel keeps its number an hour: occupied again (even within the same
    // millisecond), it goes on counting.
    const ttl = await c.command('PTTL', keys[5]);
    assert.ok(ttl > 3590000 && ttl <= 3600000, `number kept ${ttl} ms`);
    assert.deepEqual(await run('join', 'i1', 'u', '', '15000', ch, '0'), [1, 1, 1]);
    assert.equal(await indexed(), true);
    const v2 = BigInt(await version());
    assert.equal(v2, v1 + 2n);
    assert.equal(await c.command('PTTL', keys[5]), -1, 'occupied again: kept for good');
    // A refresh never moves the due time later (only a sweep does).
    const first = Number(await c.command('ZSCORE', due, ch));
    await delay(5);
    assert.deepEqual(await run('join', 'i1', 'u', '', '15000', ch, '1'), [0, 0, 0]);
    assert.equal(Number(await c.command('ZSCORE', due, ch)), first);
    // A second sidecar's entry: the first one's leave does not empty the channel.
    assert.deepEqual(await run('join', 'i2', 'u', '', '15000', ch, '0'), [0, 0, 0]);
    assert.deepEqual(await run('leave', 'i1', 'u', ch, '0'), [0, 0, '']);
    assert.equal(await indexed(), true);
    // Not due yet: a sweep leaves everything, and says when the slot is due (~15 s).
    const [next] = await sweep();
    assert.ok(next > 10000 && next <= 15000, `next due in ${next} ms`);
    // Expired: the due time comes forward (LT), the sweep removes the entry and the channel.
    assert.deepEqual(await run('join', 'i3', 'v', '', '1', ch, '0'), [1, 0, 0]);
    assert.deepEqual(await run('leave', 'i2', 'u', ch, '0'), [1, 0, '']);
    // Each notice takes the next number: join v, leave u.
    assert.equal(BigInt(await version()), v2 + 2n);
    // The members and the number, read together (presence_read.lua).
    assert.deepEqual(await c.command('EVAL', script('read'), 2, keys[1], keys[5]), [String(v2 + 2n), ['v', '']]);
    await delay(20);
    assert.deepEqual(await sweep(), [-1, ch, 1, 1, 'v', '']);
    assert.equal(await indexed(), false);
    // The swept entry's sidecar, back, joins as a new member (events), not as restored.
    assert.deepEqual(await run('join', 'i3', 'v', '', '15000', ch, '1'), [1, 1, 1]);
    // An entry Redis lost (never swept) put back: published, but no event (2).
    await c.command('DEL', keys[0], keys[1], keys[2]);
    assert.deepEqual(await run('join', 'i4', 'w', '', '15000', ch, '1'), [2, 1, 0]);
    // A leave that waited for Redis, its entry lost: still the user's leave (nobody else
    // can report it); not when another sidecar has the user, nor twice.
    assert.deepEqual(await run('leave', 'i5', 'x', ch, '1'), [1, 0, '']);
    assert.deepEqual(await run('leave', 'i5', 'w', ch, '1'), [0, 0, '']);
    // A swept channel that still has entries is due again at its earliest expiry.
    assert.deepEqual(await run('join', 'i6', 'y', '', '1', ch, '0'), [1, 0, 0]);
    await delay(20);
    const [again, ...left] = await sweep();
    assert.deepEqual(left, [ch, 0, 1, 'y', '']);
    assert.ok(again > 10000 && again <= 15000, `due again in ${again} ms`);
    c.close();
  });

  test('comet:{presence}:slots: one sweeper per due slot; a join touching a claimed slot keeps it; the audit', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const c = await redis.client();
    const slotsKey = 'comet:{presence}:slots';
    const slots = (...argv) => c.command('EVAL', script('slots'), 2, slotsKey, 'comet:{presence}:audit', ...argv);
    // A claim without audit: {lease, n, slots...}
    const claim = async (limit, lease) => {
      const [held, n, ...rest] = await slots('claim', limit, lease, '0');
      assert.equal(rest.length, n);
      return [held, ...rest];
    };
    const score = async (slot) => c.command('ZSCORE', slotsKey, slot);

    assert.equal(await slots('touch', '0', '7', '9'), 2);
    // Both due now: the first claim takes them, a second (another sidecar) gets none.
    const [lease, ...claimed] = await claim('10', '5000');
    assert.deepEqual(claimed.sort(), ['7', '9']);
    assert.match(lease, /\.5$/);
    assert.equal((await claim('10', '5000')).length, 1, 'held slots are not claimed twice');
    // A join indexes a channel of slot 7 meanwhile: its touch overwrites the claim.
    assert.equal(await slots('touch', '15000', '7'), 1);
    // Both sweeps found their index empty: slot 9 (still held) leaves; slot 7 stays, due
    // by the touch's time.
    assert.equal(await slots('done', lease, '7', '-1', '9', '-1'), 1);
    assert.equal(await score('9'), null);
    assert.ok(Number(await score('7')) % 1 === 0, 'slot 7 keeps the touch, unclaimed');
    // A sweep's next due time replaces the lease; an earlier touch wins over a later one.
    assert.equal(await slots('touch', '0', '7'), 1);
    const [lease2, slot7] = await claim('10', '5000');
    assert.equal(slot7, '7');
    assert.equal(await slots('done', lease2, '7', '3000'), 1);
    const dueAt = Number(await score('7'));
    assert.equal(await slots('touch', '15000', '7'), 0, 'a later touch moves nothing');
    assert.equal(Number(await score('7')), dueAt);
    // A sweeper that died: its lease runs out and another sidecar claims the slot.
    assert.equal(await slots('touch', '0', '11'), 1);
    const [, gone] = await claim('10', '1');
    assert.equal(gone, '11');
    await delay(10);
    assert.deepEqual((await claim('10', '5000')).slice(1), ['11']);
    await assert.rejects(slots('nonsense'), /unknown operation/);
    // The audit: each claim names the next slots in turn that are not listed (7 and 11 are).
    await c.command('DEL', 'comet:{presence}:audit');
    const [, n1, ...audit1] = await slots('claim', '10', '5000', '16');
    assert.equal(n1, 0);
    assert.deepEqual(audit1, ['0', '1', '2', '3', '4', '5', '6', '8', '9', '10', '12', '13', '14', '15']);
    const [, , ...audit2] = await slots('claim', '10', '5000', '16');
    assert.deepEqual(audit2, Array.from({ length: 16 }, (_, k) => String(16 + k)));
    // Round the 16384 slots: claim 1024 audits 16368-16383, claim 1025 is back at 0.
    await c.command('SET', 'comet:{presence}:audit', '1023');
    const [, , ...last] = await slots('claim', '10', '5000', '16');
    assert.deepEqual([last[0], last.at(-1)], ['16368', '16383']);
    const [, , ...wrapped] = await slots('claim', '10', '5000', '16');
    assert.equal(wrapped[0], '0');
    c.close();
  });
});

describe('a lost list of slots to sweep', () => {
  test("the audit lists a slot again: a killed sidecar's member is still swept", { timeout: 60000 }, async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const flags = ['--token-secret', SECRET, '--presence-grace', '0'];
    const doomed = await startRedisSidecar(redis, flags);
    const sweeper = await startRedisSidecar(redis, flags);
    cleanups.push(async () => sweeper.stop());
    // A channel on one of the first 64 slots: the first claim after the audit's cursor
    // is lost audits those.
    let ch;
    for (let i = 0; ch === undefined; i++) {
      const name = `presence:${uniqueChannel(`lost${i}`)}`;
      if (channelSlot(name) < 64) ch = name;
    }
    await member(doomed, ch, 'ghost');
    const c = await redis.client();
    const info = `comet:{${ch}}:presence:info`;
    await waitUntil(async () => (await c.command('HLEN', info)) === 1, { timeoutMs: 10000, what: 'the member in Redis' });
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    // The list of slots (and the audit's place) lost, as on a failover to a replica
    // that lagged: no live sidecar has members there to touch the slot again.
    const killedAt = Date.now();
    await c.command('DEL', 'comet:{presence}:slots', 'comet:{presence}:audit');
    await waitUntil(async () => (await c.command('HLEN', info)) === 0, {
      timeoutMs: 30000,
      intervalMs: 200,
      what: "the killed sidecar's member swept",
    });
    console.log(`lost slot list: the killed sidecar's member was swept ${Date.now() - killedAt} ms after the kill`);
    c.close();
  });
});

describe('Redis gone back to an older save', () => {
  test('notices numbered lower than before: a missed one is still made up by a read', { timeout: 90000 }, async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const flags = ['--token-secret', SECRET, '--presence-grace', '200ms'];
    const a = await startRedisSidecar(redis, flags);
    const b = await startRedisSidecar(redis, flags);
    cleanups.push(async () => b.stop());
    cleanups.push(async () => a.stop());
    const ch = `presence:${uniqueChannel('back')}`;
    let c = await redis.client();
    const version = `comet:{${ch}}:presence:version`;
    // A member written without its notice (as if the notice was lost).
    const ghost = async (name) => {
      await c.command('HSET', `comet:{${ch}}:presence:info`, name, '{}');
      await c.command('HSET', `comet:{${ch}}:presence:count`, name, '1');
      await c.command('INCR', version);
    };
    const watcher = await member(a, ch, 'watcher');
    const other = await member(b, ch, 'other');
    await waitUntil(() => known(watcher).join() === 'other,watcher', { timeoutMs: 10000, what: 'both members' });
    await c.command('SAVE');
    // Notices after the save: the sidecars' numbers move past the saved one.
    for (let i = 0; i < 4; i++) await closeWs(await member(b, ch, `x${i}`));
    const leaves = () => watcher.messages.items.filter((m) => m.type === 'leave' && m.member.id.startsWith('x')).length;
    await waitUntil(() => leaves() === 4, { timeoutMs: 10000, what: 'the four x to leave' });
    c.close();
    await redis.kill('SIGKILL');
    await redis.restart(); // loads the save: the number is back where it was
    c = await redis.client();
    await delay(REFRESH_MS + 2000); // reconnected, subscribed again, a refresh
    await ghost('ghost');
    await waitUntil(() => known(watcher).includes('ghost'), { timeoutMs: REFRESH_MS + 3000, what: 'the missed join made up' });
    await c.command('HDEL', `comet:{${ch}}:presence:info`, 'ghost');
    await c.command('HDEL', `comet:{${ch}}:presence:count`, 'ghost');
    c.close();
    await closeWs(watcher);
    await closeWs(other);
  });
});

describe('a leave Redis refuses', () => {
  test('is sent again later, unless the user came back meanwhile', { timeout: 60000 }, async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const sc = await startRedisSidecar(redis, ['--token-secret', SECRET, '--presence-grace', '0']);
    cleanups.push(async () => sc.stop());
    const ch = `presence:${uniqueChannel('busy')}`;
    const observer = await member(sc, ch, 'observer');
    let comes = await member(sc, ch, 'comes-back');
    const goes = await member(sc, ch, 'goes');
    await waitUntil(() => known(observer).join() === 'comes-back,goes,observer', { timeoutMs: 10000, what: 'all three known' });
    const before = await events(sc);
    // Redis answers BUSY to everything while a script runs past busy-reply-threshold.
    const admin = await redis.client();
    await admin.command('CONFIG', 'SET', 'busy-reply-threshold', '1000');
    const blocker = await redis.client();
    const blocked = blocker.command('EVAL', 'while true do end', '0').catch(() => {});
    await delay(100);
    // Both leave (grace 0); their leaves wait on the stuck Redis and get BUSY. One comes back.
    await closeWs(comes);
    await closeWs(goes);
    await delay(300);
    comes = await openWs(`${sc.wsUrl}/ws?token=${tokenFor(ch, SECRET, { sub: 'comes-back' })}`);
    sendJson(comes, { cmd: 'sub', ch });
    await delay(1500);
    const killer = await redis.client();
    await killer.command('SCRIPT', 'KILL');
    await blocked;
    // The refused leave of 'goes' is sent again (a refresh interval later): one leave.
    await waitUntil(() => !known(observer).includes('goes'), { timeoutMs: REFRESH_MS + 5000, what: "goes's leave" });
    await delay(REFRESH_MS + 1000); // and a refresh more: nothing removes 'comes-back'
    assert.deepEqual(known(observer), ['comes-back', 'observer']);
    const removed = async () => ((await events(sc)).member_removed ?? 0) - (before.member_removed ?? 0);
    await waitUntil(async () => (await removed()) >= 1, { timeoutMs: 5000, what: 'member_removed of goes' });
    assert.equal(await removed(), 1, 'one member_removed (goes)');
    const info = await admin.command('HGETALL', `comet:{${ch}}:presence:info`);
    assert.deepEqual(info.filter((_, i) => i % 2 === 0).sort(), ['comes-back', 'observer']);
    await closeWs(comes);
    await closeWs(observer);
    for (const c of [admin, blocker, killer]) c.close();
  });
});

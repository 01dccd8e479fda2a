// Presence across sidecars while Redis is unreachable (docs/protocol.md, "Presence across
// sidecars (Redis)"): a leave made during an outage waits and is sent once Redis is back;
// a sidecar that missed the leave notice drops the member within a refresh; each event
// once (no second member_added / channel_occupied for members Redis forgot). And the
// scripts keep comet:presence:channels in step with the entries (no SREM race).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';

import { openWs, sendJson, closeWs } from './lib/clients.mjs';
import { RedisServer, startRedisSidecar } from './lib/redis.mjs';
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

describe('presence scripts keep comet:presence:channels', () => {
  test('join adds the channel, the vacating leave removes it, in the same script as the entry', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const c = await redis.client();
    const ch = `presence:${uniqueChannel('set')}`;
    const keys = [
      `comet:{${ch}}:presence`,
      `comet:{${ch}}:presence:info`,
      `comet:{${ch}}:presence:count`,
      `comet:{${ch}}:presence:events`,
      `comet:{${ch}}:presence:swept`,
      'comet:presence:channels',
    ];
    const run = (name, ...argv) => c.command('EVAL', script(name), keys.length, ...keys, ...argv);
    const inSet = async () => c.command('SISMEMBER', 'comet:presence:channels', ch);

    assert.deepEqual(await run('join', 'i1', 'u', '', '15000', ch, '0'), [1, 1]);
    assert.equal(await inSet(), 1);
    // The member's leave empties the channel: out of the set; a join puts it back (a
    // separate SREM after the leave could undo that join's SADD: not any more).
    assert.deepEqual(await run('leave', 'i1', 'u', ch, '0'), [1, 1, '']);
    assert.equal(await inSet(), 0);
    assert.deepEqual(await run('join', 'i1', 'u', '', '15000', ch, '0'), [1, 1]);
    assert.equal(await inSet(), 1);
    // A second sidecar's entry: the first one's leave does not empty the channel.
    assert.deepEqual(await run('join', 'i2', 'u', '', '15000', ch, '0'), [0, 0]);
    assert.deepEqual(await run('leave', 'i1', 'u', ch, '0'), [0, 0, '']);
    assert.equal(await inSet(), 1);
    // Expired: the sweep removes the entry and the channel.
    assert.deepEqual(await run('join', 'i3', 'v', '', '1', ch, '0'), [1, 0]);
    assert.deepEqual(await run('leave', 'i2', 'u', ch, '0'), [1, 0, '']);
    await delay(20);
    assert.deepEqual(await run('sweep', '100', ch), [1, 'v', '']);
    assert.equal(await inSet(), 0);
    // The swept entry's sidecar, back, joins as a new member (events), not as restored.
    assert.deepEqual(await run('join', 'i3', 'v', '', '15000', ch, '1'), [1, 1]);
    // An entry Redis lost (never swept) put back: published, but no event (2).
    await c.command('DEL', keys[0], keys[1], keys[2]);
    assert.deepEqual(await run('join', 'i4', 'w', '', '15000', ch, '1'), [2, 1]);
    // A leave that waited for Redis, its entry lost: still the user's leave (nobody else
    // can report it); not when another sidecar has the user, nor twice.
    assert.deepEqual(await run('leave', 'i5', 'x', ch, '1'), [1, 0, '']);
    assert.deepEqual(await run('leave', 'i5', 'w', ch, '1'), [0, 0, '']);
    c.close();
  });
});

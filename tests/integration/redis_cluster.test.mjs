// Redis Cluster (--redis redis+cluster://seed,seed,...): a real cluster of 3 masters with
// one replica each (lib/redis_cluster.mjs), two sidecars on it, 1,000 channels spread
// over the three masters, subscribers on both sidecars (WebSockets subscribed to every
// channel, SSE and long-poll on a few), and messages published through both sidecars'
// POST /pub and from PHP (php-client/comet.php with the same URL, run as a child).
//   1. steady cluster: every message stored in Redis reaches every subscriber exactly
//      once, in id order per channel; the sharded subscriptions sit on the slot owners;
//   2. slots holding some of the channels migrate between masters mid-run (IMPORTING /
//      MIGRATING, MIGRATE in batches, SETSLOT NODE): the same, and the subscriptions
//      follow the slots to their new owners;
//   3. a master is SIGKILLed mid-run and its replica promoted: publishing resumes (time
//      reported), every acknowledged message arrives exactly once unless the subscriber
//      got an explicit reset for its channel, and no id ever carries two payloads.
// Each case prints one line of numbers.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { findBinary, killGroup } from './lib/processes.mjs';
import { health, runCleanups, sseSubscriber, wsSubscriber } from './lib/redis.mjs';
import { channelSlot, RedisCluster } from './lib/redis_cluster.mjs';
import { delay, poll, startSidecar, waitUntil, withTimeout } from './lib/sidecar.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const PHP_BIN = findBinary('PHP_BIN', 'php');
const PHP_FIXTURE = path.join(here, 'fixtures/cluster_publisher.php');

const CHANNELS = 1000;
const WS_PER_SIDECAR = 2;

const cleanups = [];
after(() => runCleanups(cleanups));

let cluster;
let tmpDir;
before(async () => {
  cluster = await RedisCluster.start({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 });
  cleanups.push(() => cluster.stop());
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'comet-cluster-test-'));
  cleanups.push(() => rmSync(tmpDir, { recursive: true, force: true }));
});

// ---------------------------------------------------------------------------------
// Set-up helpers

/** `n` channel names whose slots are spread over every master (asserted). */
async function pickChannels(prefix, n = CHANNELS) {
  const channels = Array.from({ length: n }, (_, i) => `${prefix}-${process.pid}-${i}`);
  const map = await cluster.slotMap();
  const perMaster = new Map();
  for (const ch of channels) {
    const owner = map[channelSlot(ch)];
    perMaster.set(owner, (perMaster.get(owner) ?? 0) + 1);
  }
  const masters = await cluster.masters();
  assert.equal(perMaster.size, masters.length, 'the channels land on every master');
  for (const [m, count] of perMaster) assert.ok(count > n / 5, `master :${m.port} holds ${count} of ${n} channels`);
  return channels;
}

/** One channel per master (for the SSE and long-poll subscribers). */
async function onePerMaster(channels) {
  const map = await cluster.slotMap();
  const seen = new Map();
  for (const ch of channels) {
    const owner = map[channelSlot(ch)];
    if (!seen.has(owner)) seen.set(owner, ch);
  }
  return [...seen.values()];
}

async function startClusterSidecar() {
  const sc = await startSidecar([
    '--redis', cluster.seedUrl(),
    '--workers', '2',
    '--sse-retry', '100ms',
    '--max-channels', String(CHANNELS),
    '--poll-timeout', '2s',
  ]);
  cleanups.push(() => sc.stop());
  await waitUntil(async () => (await health(sc)).status === 'ok', { timeoutMs: 20000, what: `sidecar :${sc.port} to reach the cluster` });
  return sc;
}

/** A WebSocket subscribed to every channel in `channels` (sub commands of 100), confirmed. */
async function wsAll(sc, name, channels) {
  const sub = await wsSubscriber(sc, { name });
  cleanups.push(() => sub.close());
  for (let i = 0; i < channels.length; i += 100) sub.send({ cmd: 'sub', ch: channels.slice(i, i + 100) });
  await waitUntil(
    () => {
      const confirmed = new Set();
      for (const e of sub.events.items) {
        if (e.kind === 'subscribed') confirmed.add(e.ch);
        if (e.kind === 'error') throw new Error(`${name}: ${JSON.stringify(e)}`);
      }
      return confirmed.size === channels.length;
    },
    { timeoutMs: 30000, intervalMs: 50, what: `${name} to be subscribed to ${channels.length} channels` },
  );
  sub.channels = channels;
  return sub;
}

async function sseOn(sc, name, channels) {
  const sub = sseSubscriber(sc.url, { ch: channels.join(','), name });
  cleanups.push(() => sub.close());
  await sub.opened();
  sub.channels = channels;
  return sub;
}

/** Long-poll loop on `channels` from their current head: events like the other subscribers. */
function longPoller(sc, name, channels) {
  const events = { items: [] };
  const controller = new AbortController();
  let stopped = false;
  let unavailable = 0;
  let firstAnswer;
  const ready = new Promise((resolve) => {
    firstAnswer = resolve;
  });
  const done = (async () => {
    let cursor = null;
    while (!stopped) {
      const params = { ch: channels.join(',') };
      if (cursor !== null) params.cursor = cursor;
      else params.wait = '0';
      let res;
      try {
        res = await poll(sc, params, { signal: controller.signal });
      } catch (err) {
        if (stopped) return;
        throw err;
      }
      if (res.status === 503) {
        unavailable += 1;
        await delay(100);
        continue;
      }
      if (res.status !== 200) throw new Error(`${name}: poll answered ${res.status} ${res.text}`);
      for (const m of res.json.messages) {
        if (m.type === 'reset') events.items.push({ kind: 'reset', ch: m.ch, reason: m.reason, epoch: m.epoch, id: m.id });
        else if (m.id !== undefined) events.items.push({ kind: 'msg', ch: m.ch, id: m.id, prev: m.prev, epoch: m.epoch, data: m.data });
        else events.items.push({ kind: 'bare', ch: m.ch, data: m.data });
      }
      cursor = res.json.cursor;
      firstAnswer();
    }
  })();
  done.catch((err) => {
    events.error = err;
  });
  const sub = {
    name,
    channels,
    events,
    unavailable: () => unavailable,
    ready,
    async close() {
      stopped = true;
      controller.abort();
      await done.catch(() => {});
    },
    done,
  };
  cleanups.push(() => sub.close());
  return sub;
}

/** Every subscriber of a case: WebSockets on every channel, SSE and long-poll on a few. */
async function subscribeAll(sidecars, channels, few) {
  const subs = [];
  for (const [i, sc] of sidecars.entries()) {
    for (let w = 0; w < WS_PER_SIDECAR; w++) subs.push(await wsAll(sc, `ws${w}@sc${i}`, channels));
    subs.push(await sseOn(sc, `sse@sc${i}`, few));
    const lp = longPoller(sc, `poll@sc${i}`, few);
    subs.push(lp);
  }
  // The long-pollers hold their first cursor (the head, before anything is published).
  await Promise.all(subs.filter((s) => s.ready).map((s) => withTimeout(s.ready, 20000, `${s.name}'s first answer`)));
  return subs;
}

// ---------------------------------------------------------------------------------
// Publishers

/**
 * Publishes `items` ([{ch, data}]) through `sc`'s POST /pub, `concurrency` at a time,
 * pausing `pauseMs` after each. A 503 is retried (every 25 ms, up to `retryMs`); the
 * first 200 is the acknowledgement. Returns {acked, failed, refused, attempts}.
 */
function sidecarPublisher(sc, items, { concurrency = 4, pauseMs = 0, retryMs = 20000, onAck = () => {} } = {}) {
  const stats = { acked: [], failed: [], refused: 0, published: 0 };
  // However many publishes meet a 503, none is retried past this (bounds the run time).
  const retryUntil = performance.now() + retryMs + 5000;
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      stats.published += 1;
      const deadline = performance.now() + retryMs;
      for (;;) {
        let status;
        let text;
        try {
          const res = await fetch(new URL(`/pub/${item.ch}`, sc.publishUrl), { method: 'POST', body: item.data });
          status = res.status;
          text = await res.text();
        } catch (err) {
          status = 0;
          text = String(err);
        }
        if (status === 200) {
          const ack = { ...JSON.parse(text), data: item.data, at: performance.now() };
          stats.acked.push(ack);
          onAck(ack);
          break;
        }
        if (status === 503 && performance.now() < Math.min(deadline, retryUntil)) {
          stats.refused += 1;
          await delay(25);
          continue;
        }
        stats.failed.push({ ...item, status, text });
        break;
      }
      if (pauseMs > 0) await delay(pauseMs);
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, worker)).then(() => stats);
  return { stats, done };
}

/** The PHP fixture publishing `count` messages round-robin over `channels` from `offset`. */
function phpPublisher(channels, { count, offset = 0, prefix, intervalMs = 0, onAck = () => {} }) {
  const file = path.join(tmpDir, `${prefix}.channels`);
  writeFileSync(file, channels.join('\n') + '\n');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COMET_') && !k.startsWith('PUB_')));
  Object.assign(env, {
    PUB_REDIS_URL: cluster.seedUrl(),
    PUB_CHANNELS_FILE: file,
    PUB_COUNT: String(count),
    PUB_OFFSET: String(offset),
    PUB_PREFIX: prefix,
    PUB_INTERVAL_MS: String(intervalMs),
    PUB_TIMEOUT: '2',
  });
  const child = spawn(PHP_BIN, [PHP_FIXTURE], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const stats = { acked: [], failed: [], published: 0, done: false, stderr: '' };
  const onExit = () => killGroup(child);
  process.on('exit', onExit);
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      const r = JSON.parse(line);
      if (r.done) {
        stats.done = true;
        continue;
      }
      stats.published += 1;
      if (r.ok) {
        const ack = { ch: r.ch, id: r.id, epoch: r.epoch, data: r.data, at: performance.now() };
        stats.acked.push(ack);
        onAck(ack);
      } else {
        stats.failed.push(r);
      }
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => {
    stats.stderr += c;
  });
  const done = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))).then((exit) => {
    process.off('exit', onExit);
    if (exit.code !== 0 || !stats.done) {
      throw new Error(`PHP publisher exited ${JSON.stringify(exit)} (done: ${stats.done}): ${stats.stderr}`);
    }
    return stats;
  });
  cleanups.push(async () => {
    killGroup(child);
    await done.catch(() => {});
  });
  return { stats, done, stop: () => child.stdin.write('stop\n') };
}

/** A publish plan: each channel once per round, shuffled deterministically per round. */
function plan(channels, prefix, rounds = 1) {
  const out = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < channels.length; i++) {
      const j = (i * 379 + r * 97) % channels.length; // 379 is coprime with 1000
      out.push({ ch: channels[j], data: `${prefix}-r${r}-${j}` });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Checks

/** What Redis holds for each channel (its stream at the slot owner): Map ch -> [{id, epoch, data}]. */
async function groundTruth(channels) {
  const map = await cluster.slotMap();
  const out = new Map();
  for (const ch of channels) {
    const owner = map[channelSlot(ch)];
    const entries = await owner.command('XRANGE', `comet:{${ch}}:log`, '-', '+');
    out.set(
      ch,
      entries.map(([id, fields]) => {
        const f = {};
        for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
        return { id: Number(id.split('-')[0]), epoch: f.epoch, data: f.data, prev: Number(f.prev) };
      }),
    );
  }
  return out;
}

/** Per-channel messages and resets of a subscriber. */
function byChannel(sub) {
  const msgs = new Map();
  const resets = new Map();
  for (const e of sub.events.items) {
    if (e.kind === 'msg') {
      if (!msgs.has(e.ch)) msgs.set(e.ch, []);
      msgs.get(e.ch).push(e);
    } else if (e.kind === 'reset') {
      if (!resets.has(e.ch)) resets.set(e.ch, []);
      resets.get(e.ch).push(e);
    }
  }
  return { msgs, resets };
}

/** Waits (bounded) until every subscriber holds the last expected id of each of its channels. */
async function waitDelivered(subs, lastOf, timeoutMs = 15000) {
  const pending = () => {
    const out = [];
    for (const sub of subs) {
      const { msgs } = byChannel(sub);
      for (const ch of sub.channels) {
        const want = lastOf(ch);
        if (!want) continue;
        const got = msgs.get(ch) ?? [];
        if (!got.some((m) => m.epoch === want.epoch && m.id >= want.id)) out.push(`${sub.name}:${ch}#${want.id}`);
      }
    }
    return out;
  };
  try {
    await waitUntil(() => pending().length === 0, { timeoutMs, intervalMs: 100, what: 'every subscriber to hold the last message of each channel' });
    return [];
  } catch {
    return pending();
  }
}

/**
 * Compares each subscriber's deliveries with `truth` (what Redis holds, ids in order):
 * strict exactly-once in order. Returns the summed counts and the first problems.
 */
function compareStrict(subs, truth) {
  const sum = { expected: 0, received: 0, lost: 0, duplicated: 0, outOfOrder: 0, wrongData: 0, unexpected: 0, resets: 0 };
  const problems = [];
  for (const sub of subs) {
    const { msgs, resets } = byChannel(sub);
    for (const ch of sub.channels) {
      const want = truth.get(ch) ?? [];
      const got = msgs.get(ch) ?? [];
      sum.expected += want.length;
      sum.received += got.length;
      sum.resets += (resets.get(ch) ?? []).length;
      const wantByKey = new Map(want.map((m) => [`${m.epoch}.${m.id}`, m]));
      const counts = new Map();
      for (const m of got) {
        const key = `${m.epoch}.${m.id}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        const w = wantByKey.get(key);
        if (!w) {
          sum.unexpected += 1;
          problems.push(`${sub.name} ${ch}: unexpected ${key} ${m.data}`);
        } else if (w.data !== m.data) {
          sum.wrongData += 1;
          problems.push(`${sub.name} ${ch}: ${key} data ${m.data}, Redis has ${w.data}`);
        }
      }
      for (const w of want) {
        const n = counts.get(`${w.epoch}.${w.id}`) ?? 0;
        if (n === 0) {
          sum.lost += 1;
          problems.push(`${sub.name} ${ch}: lost ${w.epoch}.${w.id} (${w.data})`);
        }
        if (n > 1) {
          sum.duplicated += n - 1;
          problems.push(`${sub.name} ${ch}: ${w.epoch}.${w.id} delivered ${n} times`);
        }
      }
      for (let i = 1; i < got.length; i++) {
        if (got[i].epoch === got[i - 1].epoch && got[i].id <= got[i - 1].id) {
          sum.outOfOrder += 1;
          problems.push(`${sub.name} ${ch}: id ${got[i].id} after ${got[i - 1].id}`);
        }
      }
    }
  }
  return { sum, problems };
}

/**
 * The failover check: every acknowledged message exactly once, unless the subscriber got a
 * reset for its channel; no (epoch, id) with two payloads; ids rising within an epoch.
 */
function compareAcked(subs, ackedByCh) {
  const sum = { expected: 0, received: 0, lost: 0, lostAfterReset: 0, duplicated: 0, outOfOrder: 0, twoPayloads: 0, resets: 0 };
  const problems = [];
  const resetReasons = new Map();
  for (const sub of subs) {
    const { msgs, resets } = byChannel(sub);
    for (const ch of sub.channels) {
      const acked = ackedByCh.get(ch) ?? [];
      const got = msgs.get(ch) ?? [];
      const chResets = resets.get(ch) ?? [];
      sum.expected += acked.length;
      sum.received += got.length;
      sum.resets += chResets.length;
      for (const r of chResets) resetReasons.set(r.reason, (resetReasons.get(r.reason) ?? 0) + 1);
      const payload = new Map();
      const counts = new Map();
      for (const m of got) {
        const key = `${m.epoch}.${m.id}`;
        if (payload.has(key) && payload.get(key) !== m.data) {
          sum.twoPayloads += 1;
          problems.push(`${sub.name} ${ch}: ${key} delivered as ${payload.get(key)} and as ${m.data}`);
        }
        payload.set(key, m.data);
        const dk = `${key}|${m.data}`;
        counts.set(dk, (counts.get(dk) ?? 0) + 1);
      }
      for (const a of acked) {
        const n = counts.get(`${a.epoch}.${a.id}|${a.data}`) ?? 0;
        if (n === 0) {
          if (chResets.length > 0) sum.lostAfterReset += 1;
          else {
            sum.lost += 1;
            problems.push(`${sub.name} ${ch}: lost acknowledged ${a.epoch}.${a.id} (${a.data})`);
          }
        }
      }
      for (const [dk, n] of counts) {
        if (n > 1) {
          sum.duplicated += n - 1;
          problems.push(`${sub.name} ${ch}: ${dk} delivered ${n} times`);
        }
      }
      for (let i = 1; i < got.length; i++) {
        if (got[i].epoch === got[i - 1].epoch && got[i].id <= got[i - 1].id) {
          sum.outOfOrder += 1;
          problems.push(`${sub.name} ${ch}: id ${got[i].id} after ${got[i - 1].id}`);
        }
      }
    }
  }
  return { sum, problems, resetReasons };
}

/**
 * PUBSUB SHARDNUMSUB on every live node: for each channel, subscriptions at its slot
 * owner (>= `minAtOwner` wanted) and anywhere else among the masters (0 wanted).
 */
/**
 * Waits up to 5 s for every channel to be subscribed at its slot's owner (twice: both
 * sidecars) and nowhere else; returns the last look (asserted by the caller).
 */
async function settledSubscriptions(channels, what) {
  let after = null;
  try {
    await waitUntil(
      async () => {
        after = await shardedSubscriptions(channels, 2);
        return after.missingAtOwner === 0 && after.atOtherMaster === 0;
      },
      { timeoutMs: 5000, intervalMs: 100, what },
    );
  } catch {
    // the caller asserts on what was seen last
  }
  return after;
}

async function shardedSubscriptions(channels, minAtOwner) {
  const names = channels.map((ch) => `comet:{${ch}}`);
  const map = await cluster.slotMap();
  const masters = await cluster.masters();
  const counts = new Map();
  for (const n of cluster.live()) counts.set(n, await cluster.shardNumSub(n, names));
  let missingAtOwner = 0;
  let atOtherMaster = 0;
  let atReplicas = 0;
  const examples = [];
  for (const [i, ch] of channels.entries()) {
    const owner = map[channelSlot(ch)];
    const atOwner = counts.get(owner)?.get(names[i]) ?? 0;
    if (atOwner < minAtOwner) {
      missingAtOwner += 1;
      if (examples.length < 5) examples.push(`${ch} (slot ${channelSlot(ch)}): ${atOwner} at owner :${owner.port}`);
    }
    for (const m of masters) if (m !== owner) atOtherMaster += counts.get(m)?.get(names[i]) ?? 0;
    for (const n of cluster.live()) if (!masters.includes(n)) atReplicas += counts.get(n)?.get(names[i]) ?? 0;
  }
  return { missingAtOwner, atOtherMaster, atReplicas, examples };
}

function ackedByChannel(...statsList) {
  const out = new Map();
  for (const s of statsList) {
    for (const a of s.acked) {
      if (!out.has(a.ch)) out.set(a.ch, []);
      out.get(a.ch).push(a);
    }
  }
  for (const list of out.values()) list.sort((a, b) => (a.epoch === b.epoch ? a.id - b.id : a.at - b.at));
  return out;
}

/** Every acknowledged message is in Redis under its id with its data. */
function ackedInTruth(ackedByCh, truth) {
  const missing = [];
  for (const [ch, list] of ackedByCh) {
    const t = new Map((truth.get(ch) ?? []).map((m) => [`${m.epoch}.${m.id}`, m.data]));
    for (const a of list) if (t.get(`${a.epoch}.${a.id}`) !== a.data) missing.push(`${ch} ${a.epoch}.${a.id} ${a.data}`);
  }
  return missing;
}

/** Error replies counted by the live nodes (INFO errorstats): {MOVED: n, ASK: n, TRYAGAIN: n, ...}. */
async function errorStats() {
  const out = {};
  for (const n of cluster.live()) {
    const info = await n.tryCommand('INFO', 'errorstats');
    if (typeof info !== 'string') continue;
    for (const m of info.matchAll(/errorstat_(\w+):count=(\d+)/g)) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  }
  return out;
}

function diffStats(before, after) {
  const out = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** gaps_filled summed over the sidecars' /healthz (stream reads after a missed live message). */
async function gapsFilled(sidecars) {
  let n = 0;
  for (const sc of sidecars) n += (await health(sc)).gaps_filled ?? 0;
  return n;
}

function line(label, { published, acked, sum, extra }) {
  const text =
    `cluster ${label}: published ${published} / acknowledged ${acked} / expected deliveries ${sum.expected}` +
    ` / received ${sum.received} / lost ${sum.lost}${sum.lostAfterReset !== undefined ? ` (+${sum.lostAfterReset} after a reset)` : ''}` +
    ` / duplicated ${sum.duplicated} / out of order ${sum.outOfOrder} / resets ${sum.resets}` +
    `${extra ? ` / ${extra}` : ''}`;
  console.log(text);
  return text;
}

// ---------------------------------------------------------------------------------
// The cases

/**
 * Two sidecars, 1,000 channels, every subscriber; publishes from both sidecars and PHP
 * while `midRun(progress)` runs (progress() = acknowledged so far). Returns what the
 * checks need.
 */
async function runCase(prefix, { rounds = 1, phpCount = 600, pauseMs = 0, midRun = null, retryMs = 20000 }) {
  const channels = await pickChannels(prefix);
  const few = await onePerMaster(channels);
  const sidecars = [await startClusterSidecar(), await startClusterSidecar()];
  const subs = await subscribeAll(sidecars, channels, few);

  const before = await shardedSubscriptions(channels, 2);
  const errorsBefore = await errorStats();
  let acks = 0;
  const onAck = () => {
    acks += 1;
  };
  const t0 = performance.now();
  const pubA = sidecarPublisher(sidecars[0], plan(channels, `${prefix}-a`, rounds), { pauseMs, retryMs, onAck });
  const pubB = sidecarPublisher(sidecars[1], plan(channels.slice().reverse(), `${prefix}-b`, rounds), { pauseMs, retryMs, onAck });
  const php = phpPublisher(channels, { count: phpCount, offset: 500, prefix: `${prefix}-php`, intervalMs: pauseMs > 0 ? 2 : 0, onAck });
  const mid = midRun ? midRun({ progress: () => acks, sidecars, channels }) : Promise.resolve(null);
  const [a, b, p, midResult] = await Promise.all([pubA.done, pubB.done, php.done, mid]);
  // Last, PHP publishes once more to 50 channels: these messages are the last of their
  // channels, so only a live (sharded pub/sub) delivery brings them, no later gap read.
  const tail = await phpPublisher(channels, { count: 50, offset: 0, prefix: `${prefix}-phptail` }).done;
  p.published += tail.published;
  p.acked.push(...tail.acked);
  p.failed.push(...tail.failed);
  const publishMs = Math.round(performance.now() - t0);
  const errors = diffStats(errorsBefore, await errorStats());
  return { channels, few, sidecars, subs, before, stats: [a, b, p], midResult, publishMs, errors };
}

test('a steady cluster: every message to every subscriber exactly once, in order; subscriptions at the slot owners', async () => {
  const r = await runCase('cl1', { rounds: 1, phpCount: 600 });
  const [a, b, p] = r.stats;
  assert.deepEqual(r.before, { missingAtOwner: 0, atOtherMaster: 0, atReplicas: r.before.atReplicas, examples: [] },
    'every channel has sharded subscriptions (both sidecars) at its slot owner and at no other master');
  const truth = await groundTruth(r.channels);
  const acked = ackedByChannel(a, b, p);
  const pending = await waitDelivered(r.subs, (ch) => truth.get(ch)?.at(-1));
  const { sum, problems } = compareStrict(r.subs, truth);
  const published = a.published + b.published + p.published;
  const ackedCount = a.acked.length + b.acked.length + p.acked.length;
  line('steady', {
    published,
    acked: ackedCount,
    sum,
    extra: `sidecar A ${a.acked.length}, sidecar B ${b.acked.length}, php ${p.acked.length} acknowledged; ` +
      `${a.refused + b.refused} refused (503, retried); publishing took ${r.publishMs} ms; ${r.subs.length} subscribers; ` +
      `sharded subscriptions at replicas ${r.before.atReplicas}; gaps filled ${await gapsFilled(r.sidecars)}; Redis error replies ${JSON.stringify(r.errors)}`,
  });
  assert.deepEqual([...a.failed, ...b.failed, ...p.failed].slice(0, 5), [], 'every publish acknowledged');
  assert.deepEqual(ackedInTruth(acked, truth).slice(0, 5), [], 'every acknowledged message is in Redis');
  assert.deepEqual(problems.slice(0, 10), [], `exactly once, in order (still waiting for: ${pending.slice(0, 5).join(' ')})`);
  assert.equal(sum.received, sum.expected);
  assert.equal(sum.resets, 0, 'no reset');
  for (const sc of r.sidecars) await sc.stop();
});

test('slots migrated between masters mid-run: nothing lost or duplicated, subscriptions follow the slots', async () => {
  let migration = null;
  const hotStats = { acked: [], failed: [], refused: 0, published: 0 };
  const r = await runCase('cl2', {
    rounds: 2,
    phpCount: 800,
    pauseMs: 2,
    midRun: async ({ progress, channels, sidecars }) => {
      const map = await cluster.slotMap();
      const masters = await cluster.masters();
      // The slots of 35 channels of master 0 go to master 1, those of 35 of master 1's to master 2.
      const moves = [];
      for (const [from, to] of [[masters[0], masters[1]], [masters[1], masters[2]]]) {
        const slots = [...new Set(channels.map(channelSlot).filter((s) => map[s] === from))].slice(0, 35);
        moves.push({ from, to, slots });
      }
      const movedChannels = channels.filter((ch) => moves.some((m) => m.slots.includes(channelSlot(ch))));
      await waitUntil(() => progress() >= 600, { timeoutMs: 20000, what: 'a quarter of the publishes' });
      const startedAt = progress();
      const t0 = performance.now();
      // Meanwhile a "hot" publisher sends to the channels of the slot being migrated, through
      // both sidecars in turn, so publishes meet every state of the migration.
      let current = null;
      let migrating = true;
      const bySlot = new Map();
      for (const ch of movedChannels) {
        if (!bySlot.has(channelSlot(ch))) bySlot.set(channelSlot(ch), []);
        bySlot.get(channelSlot(ch)).push(ch);
      }
      const hot = (async () => {
        for (let i = 0; migrating; i++) {
          if (current === null) {
            await delay(2);
            continue;
          }
          const ch = bySlot.get(current)[i % bySlot.get(current).length];
          const one = sidecarPublisher(sidecars[i % 2], [{ ch, data: `cl2-hot-${i}` }], { concurrency: 1, retryMs: 10000 });
          const st = await one.done;
          hotStats.published += st.published;
          hotStats.refused += st.refused;
          hotStats.acked.push(...st.acked);
          hotStats.failed.push(...st.failed);
        }
      })();
      let keys = 0;
      try {
        for (const m of moves) {
          keys += await cluster.migrateSlots(m.from, m.to, m.slots, {
            batch: 2,
            pauseMs: 2,
            stepPauseMs: 10,
            onSlot: (slot) => {
              current = slot;
            },
          });
        }
      } finally {
        migrating = false;
        await hot;
      }
      migration = {
        moves,
        movedChannels,
        keys,
        ms: Math.round(performance.now() - t0),
        startedAt,
        endedAt: progress(),
      };
      return migration;
    },
  });
  const [a, b, p] = r.stats;
  const map = await cluster.slotMap();
  for (const m of migration.moves) {
    for (const s of m.slots) assert.equal(map[s], m.to, `slot ${s} now at :${m.to.port}`);
  }
  const truth = await groundTruth(r.channels);
  const acked = ackedByChannel(a, b, p, hotStats);
  const pending = await waitDelivered(r.subs, (ch) => truth.get(ch)?.at(-1));
  const { sum, problems } = compareStrict(r.subs, truth);
  // The sidecars re-subscribed the moved channels at their new owners.
  const after = await settledSubscriptions(r.channels, 'the subscriptions at the new owners');
  const published = a.published + b.published + p.published + hotStats.published;
  const ackedCount = a.acked.length + b.acked.length + p.acked.length + hotStats.acked.length;
  line('migration', {
    published,
    acked: ackedCount,
    sum,
    extra: `${migration.moves.reduce((n, m) => n + m.slots.length, 0)} slots (${migration.movedChannels.length} channels, ` +
      `${migration.keys} keys) migrated in ${migration.ms} ms, between acknowledgements ${migration.startedAt} and ${migration.endedAt}; ` +
      `${hotStats.acked.length} of them published to the slot in flight; ` +
      `${a.refused + b.refused + hotStats.refused} refused (503, retried); php failed ${p.failed.length}; publishing took ${r.publishMs} ms; ` +
      `gaps filled ${await gapsFilled(r.sidecars)}; Redis error replies ${JSON.stringify(r.errors)}; ` +
      `after: ${JSON.stringify({ missingAtOwner: after?.missingAtOwner, atOtherMaster: after?.atOtherMaster })}`,
  });
  assert.ok(migration.startedAt < ackedCount * 0.75, `the migration began mid-run (${migration.startedAt} of ${ackedCount})`);
  assert.deepEqual([...a.failed, ...b.failed, ...p.failed, ...hotStats.failed].slice(0, 5), [], 'every publish acknowledged');
  assert.deepEqual(ackedInTruth(acked, truth).slice(0, 5), [], 'every acknowledged message is in Redis');
  assert.deepEqual(problems.slice(0, 10), [], `exactly once, in order (still waiting for: ${pending.slice(0, 5).join(' ')})`);
  assert.equal(sum.received, sum.expected);
  assert.equal(sum.resets, 0, 'no reset');
  assert.deepEqual(after, { missingAtOwner: 0, atOtherMaster: 0, atReplicas: after?.atReplicas, examples: [] },
    'the sharded subscriptions moved with the slots');
  for (const sc of r.sidecars) await sc.stop();
});

test('a master SIGKILLed mid-run: publishing resumes on the promoted replica; acknowledged messages exactly once or a reset', async () => {
  let failover = null;
  const r = await runCase('cl3', {
    rounds: 2,
    phpCount: 800,
    pauseMs: 2,
    retryMs: 15000,
    midRun: async ({ progress, channels, sidecars }) => {
      await waitUntil(() => progress() >= 800, { timeoutMs: 20000, what: 'a third of the publishes' });
      const map = await cluster.slotMap();
      const victim = (await cluster.masters())[0];
      const victimChannels = channels.filter((ch) => map[channelSlot(ch)] === victim);
      const killedAtAcks = progress();
      const killedAt = performance.now();
      const result = await cluster.killMaster(victim);
      // Publishing resumed: the first publish acknowledged on one of the victim's channels
      // after the kill (a probe through each sidecar, retried on 503).
      const probeCh = victimChannels[0];
      const resumed = [];
      const probeAnswers = [];
      for (const sc of sidecars) {
        for (;;) {
          const res = await fetch(new URL(`/pub/${probeCh}`, sc.publishUrl), { method: 'POST', body: `probe-${sc.port}` });
          const text = await res.text();
          if (res.status === 200) {
            resumed.push(Math.round(performance.now() - killedAt));
            break;
          }
          if (res.status !== 503) probeAnswers.push(`${res.status} ${text}`);
          if (performance.now() - killedAt > 15000) {
            resumed.push(null); // asserted after the numbers are printed
            break;
          }
          await delay(25);
        }
      }
      failover = { victim: victim.port, promoted: result.promoted.port, failoverMs: result.failoverMs, resumed, probeAnswers, killedAtAcks, victimChannels: victimChannels.length, probeCh };
      return failover;
    },
  });
  const [a, b, p] = r.stats;
  const acked = ackedByChannel(a, b, p);
  const lastAcked = (ch) => {
    const list = acked.get(ch) ?? [];
    return list.at(-1);
  };
  const pending = await waitDelivered(r.subs, lastAcked, 10000);
  const { sum, problems, resetReasons } = compareAcked(r.subs, acked);
  const published = a.published + b.published + p.published;
  const ackedCount = a.acked.length + b.acked.length + p.acked.length;
  const after = await settledSubscriptions(r.channels, 'the subscriptions at the promoted master');
  line('failover', {
    published,
    acked: ackedCount,
    sum,
    extra: `master :${failover.victim} (${failover.victimChannels} channels) killed after ${failover.killedAtAcks} acknowledgements, ` +
      `replica :${failover.promoted} promoted after ${failover.failoverMs} ms, publishing resumed after ${failover.resumed.map((ms) => (ms === null ? 'never (15 s)' : ms)).join(' / ')} ms (per sidecar); ` +
      `${a.refused + b.refused} refused (503, retried), sidecar failed ${a.failed.length + b.failed.length}, php failed ${p.failed.length}; ` +
      `reset reasons ${JSON.stringify(Object.fromEntries(resetReasons))}; two payloads ${sum.twoPayloads}; ` +
      `gaps filled ${await gapsFilled(r.sidecars)}; Redis error replies ${JSON.stringify(r.errors)}; ` +
      `after: ${JSON.stringify({ missingAtOwner: after?.missingAtOwner, atOtherMaster: after?.atOtherMaster })}`,
  });
  assert.deepEqual(failover.probeAnswers, [], 'a publish is acknowledged or refused with 503, nothing else');
  assert.ok(failover.resumed.every((ms) => ms !== null),
    `publishing resumed within 15 s of the kill on each sidecar (${failover.resumed.map((ms) => ms ?? 'never').join(' / ')}); ` +
      `meanwhile ${problems.length} delivery problems, e.g. ${problems.slice(0, 3).join('; ')}`);
  assert.deepEqual([...a.failed, ...b.failed].slice(0, 5), [], 'every sidecar publish acknowledged (503s retried)');
  assert.equal(sum.twoPayloads, 0, 'no id with two payloads');
  assert.deepEqual(problems.slice(0, 10), [], `acknowledged messages exactly once or a reset (still waiting for: ${pending.slice(0, 5).join(' ')})`);
  assert.deepEqual(after, { missingAtOwner: 0, atOtherMaster: 0, atReplicas: after?.atReplicas, examples: [] },
    'the sharded subscriptions moved to the promoted master');
  for (const sc of r.sidecars) await sc.stop();
});

// Redis Sentinel (issue 14, item 2): the sidecar finds the master through the sentinels
// (redis+sentinel://…/MASTER), uses a node only once ROLE says master, and follows a
// failover. A master, its replica and one sentinel (quorum 1, down after 500 ms) run on
// loopback; PHP-like publishing goes on through the sidecar while the master is killed:
// publishing resumes within the failover time plus a bounded delay, subscribers end with
// every acknowledged message exactly once (or an explicit reset, never a reused id),
// and the old master, back empty at the same address, is never written to.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import {
  freePort,
  health,
  RedisServer,
  REDIS_SERVER_BIN,
  RespClient,
  sseSubscriber,
  startRedisSidecar,
  waitForEvent,
  waitForId,
  wsSubscriber,
} from './lib/redis.mjs';
import { delay, uniqueChannel, waitUntil } from './lib/sidecar.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function startSentinel(masterPort) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-sentinel-'));
  const port = await freePort();
  const conf = path.join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1`,
      'sentinel down-after-milliseconds mymaster 500',
      'sentinel failover-timeout mymaster 2000',
      'sentinel parallel-syncs mymaster 1',
      '',
    ].join('\n'),
  );
  const child = spawn(REDIS_SERVER_BIN, [conf, '--sentinel'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  await waitUntil(
    async () => {
      try {
        const c = await RespClient.connect(port, '127.0.0.1', { timeoutMs: 500 });
        try {
          const addr = await c.command('SENTINEL', 'get-master-addr-by-name', 'mymaster');
          return Array.isArray(addr) && Number(addr[1]) === masterPort;
        } finally {
          c.close();
        }
      } catch {
        return false;
      }
    },
    { timeoutMs: 10000, what: 'the sentinel to monitor the master' },
  );
  return { port, async master() {
    const c = await RespClient.connect(port);
    try {
      return Number((await c.command('SENTINEL', 'get-master-addr-by-name', 'mymaster'))[1]);
    } finally {
      c.close();
    }
  } };
}

async function evalshaCalls(server) {
  const c = await RespClient.connect(server.port);
  try {
    const info = await c.command('INFO', 'commandstats');
    const m = /cmdstat_evalsha:calls=(\d+)/.exec(info);
    return m ? Number(m[1]) : 0;
  } finally {
    c.close();
  }
}

test('a master killed mid-stream: publishing follows the failover, nothing lost or reused', async () => {
  const master = await RedisServer.start();
  const replica = await RedisServer.start();
  cleanups.push(() => master.stop(), () => replica.stop());
  const rc = await replica.client();
  await rc.command('REPLICAOF', '127.0.0.1', String(master.port));
  await waitUntil(async () => /master_link_status:up/.test(await rc.command('INFO', 'replication')), {
    what: 'the replica to sync',
  });
  const sentinel = await startSentinel(master.port);
  const sc = await startRedisSidecar({ url: `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster` }, ['--workers', '2']);
  cleanups.push(() => sc.stop());
  await waitUntil(async () => (await health(sc)).status === 'ok', { what: 'the sidecar to reach the master' });

  const ch = uniqueChannel('sentinel');
  const ws = await wsSubscriber(sc, { name: 'ws', query: { ch } });
  const sse = sseSubscriber(sc.url, { ch, name: 'sse' });
  cleanups.push(() => ws.close(), () => sse.close());
  await sse.opened();
  await waitForEvent(ws, (e) => e.kind === 'subscribed', 'subscribed');

  // Steady state: the connections stay up (a subscribed connection cannot take ROLE; it
  // once dropped every second) and live messages need no gap reads.
  await delay(3000);
  for (let i = 0; i < 3; i++) await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: `warm${i}` });
  for (const sub of [ws, sse]) await waitForId(sub, 3);
  assert.doesNotMatch(sc.stderr, /connection lost/, 'no connection dropped while the master is healthy');
  assert.equal((await health(sc)).gaps_filled, 0, 'live messages arrive live, not through gap reads');

  const acked = [];
  let refused = 0;
  let longestGapMs = 0;
  let lastAckAt = performance.now();
  let killedAt = 0;
  let oldMasterBack = false;
  let evalshaOnOldMaster = 0;
  for (let i = 1; i <= 120; i++) {
    if (i === 30) {
      await master.kill('SIGKILL');
      killedAt = performance.now();
    }
    // The old master comes back empty at the same address once the replica took over.
    if (i === 90 && !oldMasterBack) {
      await master.restart();
      oldMasterBack = true;
    }
    for (;;) {
      const res = await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: `m${i}` });
      const text = await res.text();
      if (res.status === 200) {
        const now = performance.now();
        longestGapMs = Math.max(longestGapMs, now - lastAckAt);
        lastAckAt = now;
        acked.push({ ...JSON.parse(text), data: `m${i}` });
        break;
      }
      assert.equal(res.status, 503, `a publish is acknowledged or refused with 503, never anything else: ${text}`);
      refused += 1;
      assert.ok(performance.now() - lastAckAt < 20000, 'publishing resumes within 20 s of the failover');
      await delay(50);
    }
    if (oldMasterBack) evalshaOnOldMaster = Math.max(evalshaOnOldMaster, await evalshaCalls(master));
    await delay(10);
  }
  const newMaster = await sentinel.master();
  assert.equal(newMaster, replica.port, 'the sentinel promoted the replica');
  assert.equal(evalshaOnOldMaster, 0, 'the old master, back empty, was never published to');

  const last = acked.at(-1);
  for (const sub of [ws, sse]) {
    await waitForId(sub, last.id, { epoch: last.epoch });
    const msgs = sub.events.items.filter((e) => e.kind === 'msg');
    const resets = sub.events.items.filter((e) => e.kind === 'reset');
    const byKey = new Map();
    for (const m of msgs) {
      const key = `${m.epoch}.${m.id}`;
      if (byKey.has(key)) assert.equal(m.data, byKey.get(key), `${sub.name}: ${key} with two payloads`);
      byKey.set(key, m.data);
    }
    // Every acknowledged message of the final epoch exactly once; before a reset, the
    // reset itself tells the client that history was lost.
    const finalEpoch = acked.filter((a) => a.epoch === last.epoch);
    for (const a of finalEpoch) {
      const n = msgs.filter((m) => m.epoch === a.epoch && m.id === a.id && m.data === a.data).length;
      assert.equal(n, 1, `${sub.name}: ${a.data} (${a.epoch}.${a.id}) delivered ${n} times`);
    }
    if (resets.length === 0) {
      for (const a of acked) assert.ok(msgs.some((m) => m.id === a.id && m.epoch === a.epoch && m.data === a.data), `${sub.name} lost ${a.data}`);
    }
    console.log(
      `sentinel ${sub.name}: published 120, acknowledged ${acked.length}, received ${msgs.length}, ` +
        `resets ${resets.length}, refused (503, retried) ${refused}, longest time without an acknowledged publish ${Math.round(longestGapMs)} ms ` +
        `(master killed at publish 30), epochs ${[...new Set(acked.map((a) => a.epoch))].join(' -> ')}`,
    );
  }
  assert.ok(killedAt > 0);
});

test('a master that stops answering (SIGSTOP) is left: publishing resumes on the promoted replica', async () => {
  const master = await RedisServer.start();
  const replica = await RedisServer.start();
  cleanups.push(async () => {
    if (master.child) master.child.kill('SIGCONT');
    await master.stop();
  }, () => replica.stop());
  const rc = await replica.client();
  await rc.command('REPLICAOF', '127.0.0.1', String(master.port));
  await waitUntil(async () => /master_link_status:up/.test(await rc.command('INFO', 'replication')), {
    what: 'the replica to sync',
  });
  const sentinel = await startSentinel(master.port);
  const sc = await startRedisSidecar({ url: `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster` }, ['--workers', '1']);
  cleanups.push(() => sc.stop());
  await waitUntil(async () => (await health(sc)).status === 'ok', { what: 'the sidecar to reach the master' });
  const ch = uniqueChannel('sigstop');
  const ws = await wsSubscriber(sc, { name: 'ws', query: { ch } });
  cleanups.push(() => ws.close());
  await waitForEvent(ws, (e) => e.kind === 'subscribed', 'subscribed');
  for (let i = 1; i <= 3; i++) await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: `a${i}` });
  await waitForId(ws, 3);

  master.child.kill('SIGSTOP'); // no reset, no FIN: only silence
  const t0 = performance.now();
  let ack = null;
  let unanswered = 0;
  while (!ack) {
    assert.ok(performance.now() - t0 < 20000, 'publishing resumes within 20 s of the master going silent');
    const res = await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: 'after', signal: AbortSignal.timeout(3000) }).catch(() => null);
    if (res === null) unanswered += 1;
    else if (res.status === 200) ack = await res.json();
    else await delay(100);
  }
  const resumedMs = Math.round(performance.now() - t0);
  assert.equal(await sentinel.master(), replica.port, 'the sentinel promoted the replica');
  await waitForId(ws, ack.id, { epoch: ack.epoch });
  console.log(`sentinel SIGSTOP: publishing resumed ${resumedMs} ms after the master went silent (${unanswered} publishes timed out meanwhile); the subscriber got the message`);
});

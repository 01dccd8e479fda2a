// Issue 14, items 4 and 5 on one standalone Redis:
// * --redis-wait-replicas: a publish is answered once a replica has it (Redis WAIT), or
//   after --redis-wait-timeout with "durable":false (published, but not yet on a replica:
//   a failover now could lose it) — never a 503 for a message that was published.
// * One Redis subscription per channel per process, however many workers hold its
//   subscribers (PUBSUB NUMSUB), and none left once they are gone.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { RedisServer, health, messagesOf, pubsubName, sseSubscriber, startRedisSidecar, waitForId } from './lib/redis.mjs';
import { delay, uniqueChannel, waitUntil } from './lib/sidecar.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function metric(sc, name) {
  const text = await (await fetch(`${sc.publishUrl}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

test('--redis-wait-replicas: durable once a replica has it, "durable":false when none answers in time', async () => {
  const master = await RedisServer.start();
  const replica = await RedisServer.start();
  cleanups.push(() => master.stop(), () => replica.stop());
  const rc = await replica.client();
  await rc.command('REPLICAOF', '127.0.0.1', String(master.port));
  const mc = await master.client();
  await waitUntil(async () => /slave0:.*state=online/.test(await mc.command('INFO', 'replication')), {
    what: 'the replica to sync',
  });
  const sc = await startRedisSidecar(master, ['--redis-wait-replicas', '1', '--redis-wait-timeout', '300ms', '--workers', '1']);
  cleanups.push(() => sc.stop());
  await waitUntil(async () => (await health(sc)).status === 'ok', { what: 'the sidecar to reach Redis' });
  const ch = uniqueChannel('durable');

  const ok = await (await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: 'one' })).json();
  assert.equal(ok.replicas, 1);
  assert.equal(ok.durable, true);

  replica.child.kill('SIGSTOP'); // the replica stops acknowledging
  cleanups.push(async () => replica.child?.kill('SIGCONT'));
  const started = performance.now();
  const res = await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: 'two' });
  const tookMs = performance.now() - started;
  assert.equal(res.status, 200, 'published (in the stream, delivered): not an error to retry');
  const slow = await res.json();
  assert.equal(slow.id, 2);
  assert.equal(slow.replicas, 0);
  assert.equal(slow.durable, false);
  assert.ok(tookMs >= 250 && tookMs < 2000, `answered after the wait timeout (${tookMs.toFixed(0)} ms)`);
  assert.equal(await metric(sc, 'comet_redis_publishes_not_durable_total'), 1);

  // Twenty at once with the replica still stopped: one WAIT answers all publishes written
  // before it (a WAIT blocks its connection; one per publish took 20 x 300 ms).
  const burstStart = performance.now();
  const burst = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: `burst ${i}` }).then((r) => r.json()),
    ),
  );
  const burstMs = performance.now() - burstStart;
  assert.ok(burst.every((b) => b.durable === false && b.replicas === 0 && b.id > 2));
  assert.ok(burstMs < 3000, `20 publishes answered in ${burstMs.toFixed(0)} ms (a few WAITs, not 20 x 300 ms)`);

  replica.child.kill('SIGCONT');
  await waitUntil(
    async () => (await (await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: 'again' })).json()).durable,
    { what: 'publishes to be durable again' },
  );
  console.log(`wait-replicas: durable publish answered; replica stopped: answered after ${tookMs.toFixed(0)} ms with durable:false; 20 at once in ${burstMs.toFixed(0)} ms`);
});

test('one Redis subscription per channel per process with 4 workers', async () => {
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  const sc = await startRedisSidecar(redis, ['--workers', '4']);
  cleanups.push(() => sc.stop());
  const rc = await redis.client();
  const numsub = async (ch) => Number((await rc.command('PUBSUB', 'NUMSUB', pubsubName(ch)))[1]);
  const chA = uniqueChannel('shared-a');
  const chB = uniqueChannel('shared-b');
  // 16 connections per channel: the kernel spreads them over the four workers.
  const subs = [];
  for (let i = 0; i < 16; i++) for (const ch of [chA, chB]) subs.push({ ch, sub: sseSubscriber(sc.url, { ch, name: `${ch}#${i}` }) });
  cleanups.push(async () => subs.forEach(({ sub }) => sub.close()));
  await Promise.all(subs.map(({ sub }) => sub.opened()));
  await waitUntil(async () => (await numsub(chA)) === 1 && (await numsub(chB)) === 1, {
    what: 'both channels subscribed in Redis',
  });
  for (let i = 1; i <= 5; i++)
    for (const ch of [chA, chB]) await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: `m${i}` });
  for (const { sub } of subs) await waitForId(sub, 5);
  for (const { sub } of subs)
    assert.deepEqual(messagesOf(sub).map((e) => e.id), [1, 2, 3, 4, 5]);
  assert.equal(await numsub(chA), 1, 'one subscription for 16 subscribers on 4 workers');
  assert.equal(await numsub(chB), 1);
  assert.equal((await health(sc)).redis_subscriptions, 2);
  const clients = await rc.command('CLIENT', 'LIST');
  const subscriberConnections = clients.split('\n').filter((l) => / sub=[1-9]/.test(l)).length;
  assert.equal(subscriberConnections, 1, 'one pub/sub connection for the process');

  for (const { sub } of subs) sub.close();
  await waitUntil(async () => (await numsub(chA)) === 0 && (await numsub(chB)) === 0, {
    what: 'the subscriptions to go with the last subscribers',
  });
  await delay(50);
  assert.equal((await health(sc)).redis_subscriptions, 0);
  console.log('4 workers, 32 subscribers on 2 channels: PUBSUB NUMSUB 1 per channel, 1 pub/sub connection; 0 after they left');
});

// Failover through the SHIPPED HAProxy recipe (deploy/haproxy/comet.cfg, run unchanged:
// only its address variables are set, see lib/haproxy.mjs): two sidecars on one Redis
// behind HAProxy, 500 subscribers connected through it (200 WebSocket, 200 SSE, 100
// long-poll, on 4 channels, all from the channels' first message). While PHP
// (fixtures/haproxy_publisher.php, the shipped php-client) publishes, half through
// Redis and half over HTTP through the recipe's internal publish frontend, sidecar 1 is
// killed (SIGKILL) and restarted on its port (a crash, then the supervisor restarting
// it), and then sidecar 2 is stopped (SIGTERM: it drains) like the second half of a
// rolling restart. Every subscriber must end with every message of its channel exactly
// once, in order, no subscriber may be refused (HAProxy retries on the other instance)
// and no publish may fail. Prints one line of counts per transport, and how many
// requests HAProxy retried on the other instance (from its log).
//
// Needs haproxy (Debian package "haproxy"; COMET_HAPROXY_BIN for another binary), php-cli
// and redis-server. COMET_HAPROXY_RECIPE runs another recipe (e.g. one without "option
// redispatch": the test fails, publishes answer 503 and subscribers are refused);
// COMET_HAPROXY_LOG_FILE saves HAProxy's log and the publisher's results there.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { HAProxy, HAPROXY_RECIPE, pollFailoverSubscriber, sseFailoverSubscriber, wsFailoverSubscriber } from './lib/haproxy.mjs';
import { RedisServer, freePort, startRedisSidecar, tally } from './lib/redis.mjs';
import { withTimeout } from './lib/sidecar.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const PUBLISHER = path.join(here, 'fixtures/haproxy_publisher.php');
const KEY = 'haproxy-failover-test-key';
const CHANNELS = ['fo-a', 'fo-b', 'fo-c', 'fo-d'];
const SUBSCRIBERS = { ws: 200, sse: 200, poll: 100 };
const COUNT = 600; // messages, 150 per channel, 300 through Redis and 300 over HTTP
const INTERVAL_MS = 20; // ~12 s of publishing
const KILL_AT = 150; // SIGKILL sidecar 1 after this many publishes
const TERM_AT = 400; // SIGTERM sidecar 2 after this many (once sidecar 1 is back)
// The publisher pauses from the SIGKILL until the process is gone (10-150 ms): a
// connection made to the instance in those milliseconds (while the kernel tears the
// process down, its listening socket still completes handshakes) is reset without an
// answer, and a publish on it fails (HTTP 502): retrying it could publish it twice, since
// HAProxy cannot tell it from one the instance had taken. No pause for the SIGTERM: a
// draining sidecar closes its listeners at once (refused connects are retried on the
// other instance) and answers every publish it has taken (integration.drain). Everything
// else runs on: subscribers reconnect at once, and publishes go on while HAProxy still
// lists the dead instance (which is what redispatch is for). COMET_FAILOVER_PAUSE=0
// publishes straight through the SIGKILL too (to measure that window).
const PAUSE = process.env.COMET_FAILOVER_PAUSE !== '0';
// The PHP client's answer timeout for the publishes. Its default, 0.5 s, holds on a
// quiet machine (the slowest publish through a failover takes ~50 ms), but an ASan
// sidecar on a loaded CI machine answers some publishes in 0.2-0.6 s with no failover
// at all; the counts line says how many took over 0.5 s.
const PUBLISH_TIMEOUT = process.env.COMET_FAILOVER_PUBLISH_TIMEOUT ?? '2';

let redis;
const sidecarPorts = [];
const sidecars = [null, null];
let proxy;
const subscribers = [];

/** Sidecar `i` (0 or 1) on its fixed port (so HAProxy's server line stays valid across a restart). */
function startNode(i) {
  return startRedisSidecar(redis, [
    '--listen', `127.0.0.1:${sidecarPorts[i]}`,
    '--publish-key', KEY,
    '--workers', '2',
    '--sse-retry', '100ms',
  ]);
}

before(async () => {
  redis = await RedisServer.start();
  sidecarPorts.push(await freePort(), await freePort());
  sidecars[0] = await startNode(0);
  sidecars[1] = await startNode(1);
  proxy = await HAProxy.start({ port: await freePort(), publishPort: await freePort(), servers: sidecarPorts });
  await proxy.waitServer('s1', 'UP');
  await proxy.waitServer('s2', 'UP');
});

after(async () => {
  for (const s of subscribers) await s.close();
  if (proxy) await proxy.stop();
  for (const s of sidecars) s?.kill();
  if (redis) await redis.stop();
});

/**
 * The shipped PHP client publishing COUNT messages; `onLine` sees each result line. With
 * `pauses`, the publisher stops after those counts until `onPause(count)` resolves.
 */
function runPublisher(onLine, { pauses = [], onPause = async () => {} } = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COMET_')));
  Object.assign(env, {
    PUB_REDIS_URL: redis.url,
    PUB_HTTP_URL: proxy.publishUrl,
    PUB_KEY: KEY,
    PUB_CHANNELS: CHANNELS.join(','),
    PUB_COUNT: String(COUNT),
    PUB_INTERVAL_MS: String(INTERVAL_MS),
    PUB_PAUSE_AFTER: pauses.join(','),
    PUB_TIMEOUT: PUBLISH_TIMEOUT,
  });
  const child = spawn('php', [PUBLISHER], { stdio: ['pipe', 'pipe', 'pipe'], env });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c) => {
    stderr += c;
  });
  const lines = readline.createInterface({ input: child.stdout });
  const results = [];
  const actions = [];
  lines.on('line', (line) => {
    const r = JSON.parse(line);
    if (r.done) return;
    if (r.paused !== undefined) {
      actions.push(onPause(r.paused).finally(() => child.stdin.write('go\n')));
      return;
    }
    results.push(r);
    onLine(r, results.length);
  });
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      child.stdin.end();
      if (code === 0) resolve(Promise.all(actions).then(() => results));
      else reject(new Error(`php publisher exited ${code}: ${stderr}`));
    });
  });
  return { done, child };
}

/** The messages of `ch` in Redis (the truth: what was published), in id order. */
async function storedMessages(ch) {
  const client = await redis.client();
  const entries = await client.command('XRANGE', `comet:{${ch}}:log`, '-', '+');
  client.close();
  return entries.map(([entryId, fields]) => {
    const f = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
    return { id: Number(entryId.split('-')[0]), epoch: f.epoch, data: f.data };
  });
}

test('500 subscribers through HAProxy: a sidecar killed, then the other stopped, while PHP publishes', { timeout: 120000 }, async () => {
  const t0 = Date.now();
  const stamp = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const log = [];

  // 1. Subscribers through HAProxy (leastconn spreads them over both sidecars).
  let n = 0;
  for (const [kind, count] of Object.entries(SUBSCRIBERS)) {
    for (let i = 0; i < count; i++) {
      const ch = CHANNELS[n % CHANNELS.length];
      const name = `${kind}#${i} ${ch}`;
      if (kind === 'ws') subscribers.push(wsFailoverSubscriber(proxy.wsUrl, ch, name));
      else if (kind === 'sse') subscribers.push(sseFailoverSubscriber(proxy.url, ch, name));
      else subscribers.push(pollFailoverSubscriber(proxy.url, ch, name));
      n += 1;
    }
  }
  await withTimeout(Promise.all(subscribers.map((s) => s.opened)), 30000, 'the 500 subscribers to connect');
  const spread = await Promise.all(sidecars.map(async (s) => (await fetch(`${s.publishUrl}/healthz`, { headers: { 'X-Comet-Key': KEY } }).then((r) => r.json())).connections));
  log.push(`${stamp()} subscribed; connections per sidecar ${spread.join(' / ')}`);

  // 2. PHP publishes; the sidecars fail meanwhile. The publisher pauses while a sidecar
  // is being torn down (see PAUSE above), not while HAProxy still lists it.
  const events = [];
  let recovery = null; // sidecar 1 restarted and back in HAProxy
  const kill = async () => {
    sidecars[0].child.kill('SIGKILL');
    await sidecars[0].exited;
    events.push(`${stamp()} sidecar 1 SIGKILLed and gone`);
    recovery = (async () => {
      await proxy.waitServer('s1', 'DOWN', { timeoutMs: 15000 });
      events.push(`${stamp()} HAProxy: s1 DOWN`);
      sidecars[0] = await startNode(0);
      events.push(`${stamp()} sidecar 1 restarted`);
      await proxy.waitServer('s1', 'UP', { timeoutMs: 15000 });
      events.push(`${stamp()} HAProxy: s1 UP`);
    })();
  };
  const term = async () => {
    await recovery;
    const stopping = sidecars[1].stop(); // SIGTERM; asserts a clean exit (and ASan's silence)
    events.push(`${stamp()} sidecar 2 SIGTERMed`);
    await stopping;
    events.push(`${stamp()} sidecar 2 drained and gone`);
  };
  const act = (count) => (count === KILL_AT ? kill() : term());
  const unpaused = [];
  const publisher = runPublisher(
    (r, count) => {
      if ((!PAUSE && count === KILL_AT) || count === TERM_AT) unpaused.push(act(count));
    },
    { pauses: PAUSE ? [KILL_AT] : [], onPause: act },
  );
  const results = await publisher.done;
  await Promise.all(unpaused);
  await recovery;
  log.push(...events, `${stamp()} publisher done`);

  // 3. What was published: PHP's answers, checked against Redis (no message twice).
  const failed = results.filter((r) => !r.ok);
  const stored = Object.fromEntries(await Promise.all(CHANNELS.map(async (ch) => [ch, await storedMessages(ch)])));
  const storedCount = Object.values(stored).reduce((a, m) => a + m.length, 0);
  const byData = new Map();
  for (const m of Object.values(stored).flat()) byData.set(m.data, (byData.get(m.data) ?? 0) + 1);
  const publishedTwice = [...byData.values()].filter((c) => c > 1).length;
  for (const r of results.filter((x) => x.ok)) {
    const m = stored[r.ch].find((s) => s.id === r.id);
    assert.ok(m, `publish ${r.i} (${r.via}) answered id ${r.id}, which Redis does not have`);
    assert.equal(JSON.parse(m.data).i, r.i, `publish ${r.i}: Redis id ${r.id} holds another message`);
  }

  // 4. Every subscriber gets everything of its channel (bounded wait), then the counts.
  const deadline = Date.now() + 20000;
  await Promise.allSettled(
    subscribers.map((s) => s.waitForId(stored[s.ch].at(-1)?.id ?? 0, Math.max(1, deadline - Date.now()))),
  );
  log.push(`${stamp()} deliveries settled`);
  const slowest = Math.max(...results.map((r) => r.ms));
  const via = (v) => results.filter((r) => r.via === v);
  const failedLine =
    `failed publishes ${failed.length} (Redis ${via('redis').filter((r) => !r.ok).length}/${via('redis').length},` +
    ` HTTP via HAProxy ${via('http').filter((r) => !r.ok).length}/${via('http').length};` +
    ` slowest ${slowest} ms, ${results.filter((r) => r.ms > 500).length} over 0.5 s)`;
  const lines = [];
  const problems = [];
  for (const kind of Object.keys(SUBSCRIBERS)) {
    const subs = subscribers.filter((s) => s.kind === kind);
    const tallies = subs.map((s) => tally(s.messages, stored[s.ch]));
    const sum = (k) => tallies.reduce((a, t) => a + t[k], 0);
    const errors = subs.reduce((a, s) => a + s.errors.length, 0);
    const statuses = [...new Set(subs.flatMap((s) => s.errors.map((e) => e.status ?? e.error)))].join(',');
    lines.push(
      `haproxy failover ${kind}: ${subs.length} subscribers / published ${storedCount} / expected ${sum('published')}` +
        ` / received ${sum('received')} / lost ${sum('lost')} / duplicated ${sum('duplicated')}` +
        ` / out of order ${sum('outOfOrder')} / ${failedLine}` +
        ` / ${kind === 'poll' ? 'polls again after an error' : 'reconnects'} ${subs.reduce((a, s) => a + s.reconnects, 0)}` +
        ` / refused connects ${errors}${statuses ? ` (${statuses})` : ''}`,
    );
    subs.forEach((s, i) => {
      const t = tallies[i];
      if (t.lost || t.duplicated || t.outOfOrder || t.unexpected || t.wrongData || s.resets.length) {
        const ids = s.messages.map((m) => m.id);
        const back = ids.findIndex((id, k) => k > 0 && id <= ids[k - 1]);
        problems.push(
          `${s.name}: ${JSON.stringify(t)}, resets ${s.resets.length}, errors ${JSON.stringify(s.errors.slice(0, 3))}` +
            (back > 0 ? `, ids ... ${ids.slice(Math.max(0, back - 5), back + 5).join(' ')} ... (at #${back})` : '') +
            (s.history.length ? `, last polls ${JSON.stringify(s.history.slice(-8))}` : ''),
        );
      }
    });
  }
  // HAProxy's log: requests it retried (on another instance: redispatched), e.g.
  // 127.0.0.1:35052 [03/Dec/2026:13:15:12.159] publish sidecars/s1 0/0/0/-1/3 502 180 - - SH-- 470/1/469/195/+1 0/0 "POST /pub/x HTTP/1.1"
  const logged = proxy.log
    .split('\n')
    .map((l) => /^\S+ \[[^\]]+\] (\S+) \S+ \S+ (\d+) .* \d+\/\d+\/\d+\/\d+\/(\+?)(\d+) \S+ "(\S+)/.exec(l))
    .filter(Boolean)
    .map((m) => ({ frontend: m[1], status: Number(m[2]), redispatched: m[3] === '+', retries: Number(m[4]), method: m[5] }));
  const retried = (fe) => logged.filter((r) => r.frontend === fe && r.retries > 0);
  lines.push(
    `haproxy failover retries: publishes ${retried('publish').length} retried (${retried('publish').filter((r) => r.redispatched).length} on the other instance),` +
      ` subscriber requests ${retried('push').length} retried (${retried('push').filter((r) => r.redispatched).length} on the other instance)`,
  );
  for (const l of lines) console.log(l);
  if (process.env.COMET_HAPROXY_LOG_FILE) {
    writeFileSync(process.env.COMET_HAPROXY_LOG_FILE, `${proxy.log}\n${results.map((r) => JSON.stringify(r)).join('\n')}\n`);
  }
  if (failed.length > 0 || problems.length > 0) {
    // HAProxy's log lines of the publishes and of the slow or failed requests.
    const slow = proxy.log.split('\n').filter((l) => /POST \/pub|" (5\d\d|0) /.test(l) && !/ 200 /.test(l));
    console.log(`haproxy log (publishes and errors that were not 200):\n${slow.slice(0, 40).join('\n')}`);
  }
  console.log(`haproxy failover timeline: ${log.join('; ')}`);
  console.log(`haproxy failover recipe: ${HAPROXY_RECIPE}`);

  assert.deepEqual(failed, [], `${failed.length} publishes failed: ${JSON.stringify(failed.slice(0, 5))}`);
  assert.equal(storedCount, COUNT, 'every publish is in Redis once');
  assert.equal(publishedTwice, 0, 'no message was published twice (a retried publish)');
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} subscribers did not get every message exactly once`);
  // HAProxy retried every connection that failed on the other instance: no subscriber
  // was ever refused (503) or cut off without an answer.
  const refused = subscribers.filter((s) => s.errors.length > 0);
  assert.deepEqual(refused.slice(0, 5).map((s) => `${s.name}: ${JSON.stringify(s.errors.slice(0, 3))}`), [], `${refused.length} subscribers were refused`);
  assert.ok(sidecars[0].running, 'sidecar 1 (restarted) still runs');
});

test('errors written by HAProxy: JSON, readable cross-origin without credentials; /pub refused', async () => {
  const origin = 'https://shop.example';
  // /pub through the public frontend: refused by HAProxy itself.
  let res = await fetch(`${proxy.url}/pub/x`, { method: 'POST', body: 'no', headers: { Origin: origin, 'X-Comet-Key': KEY } });
  assert.equal(res.status, 403);
  assert.equal(res.headers.get('access-control-allow-origin'), origin);
  assert.equal(res.headers.get('access-control-allow-credentials'), null);
  assert.match(res.headers.get('vary') ?? '', /Origin/);
  assert.deepEqual(await res.json(), { error: 'refused by the proxy', status: 403 });
  res = await fetch(`${proxy.url}/%70ub/x`, { method: 'POST', body: 'no', headers: { 'X-Comet-Key': KEY } });
  assert.equal(res.status, 403, 'the decoded path is refused too');
  assert.equal(res.headers.get('access-control-allow-origin'), null, 'no Origin, no CORS header (not even empty)');
  // A sidecar's own answers keep its CORS headers (the proxy adds nothing).
  res = await fetch(`${proxy.url}/poll?ch=cors&wait=0`, { headers: { Origin: origin } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('access-control-allow-origin'), origin);
  await res.text();
  // The internal publish frontend serves /pub only.
  res = await fetch(`${proxy.publishUrl}/poll?ch=x&wait=0`);
  assert.equal(res.status, 403);
  await res.text();

  // No sidecar up: 503 from HAProxy, JSON, with CORS for the page and no credentials.
  for (const s of sidecars) if (s.running) await s.stop();
  await proxy.waitServer('s1', 'DOWN', { timeoutMs: 5000 });
  await proxy.waitServer('s2', 'DOWN', { timeoutMs: 5000 });
  res = await fetch(`${proxy.url}/sse?ch=x`, { headers: { Origin: origin } });
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('access-control-allow-origin'), origin);
  assert.equal(res.headers.get('access-control-allow-credentials'), null);
  assert.deepEqual(await res.json(), { error: 'no push server available', status: 503 });
  res = await fetch(`${proxy.publishUrl}/pub/x`, { method: 'POST', body: 'x', headers: { 'X-Comet-Key': KEY } });
  assert.equal(res.status, 503);
  assert.equal(res.headers.get('access-control-allow-origin'), null);
  await res.text();
});

// Resume: the page's sidecar (Redis-backed history) is stopped and started again on the
// same port while messages are being published through a second sidecar on the same
// Redis. What is published while the page's sidecar is down can only reach the page
// by resuming from its per-channel cursors; the page reconnects by itself (the
// reachability probe keeps it on its transport while the sidecar is away) and ends
// with every message exactly once, in order.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertExactlyOnce,
  demoState,
  launchBrowser,
  openDemo,
  publish,
  runCleanups,
  startRedis,
  startSidecar,
  waitOpen,
  waitReceived,
  waitSubscribed,
  waitUntil,
} from './lib/harness.mjs';

const N = 160;
let redis;
let browser;
let publisher;

before(async () => {
  redis = await startRedis();
  publisher = await startSidecar(['--redis', redis.url, '--workers', '1']);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await publisher?.stop();
  await redis?.stop();
});

/**
 * For a page that did not get everything: which messages are missing, when they were
 * published relative to the restart, what the restarted sidecar answers for the page's
 * cursor, and whether they still arrive later (within 20 s).
 */
async function diagnose(page, sidecar, expected, restartedAt) {
  const received = (await demoState(page)).received;
  const missing = [];
  for (const [ch, list] of Object.entries(expected)) {
    const ids = new Set(received.filter((m) => m.ch === ch).map((m) => m.id));
    for (const m of list) if (!ids.has(m.id)) missing.push(`${ch}#${m.id} (published ${m.at - restartedAt} ms after the restart)`);
  }
  const cursor = await page.evaluate(() => window.cometDemo.conn.cursor());
  const res = await fetch(`${sidecar.url}/poll?wait=0&cursor=${encodeURIComponent(cursor)}`);
  const poll = `${res.status} ${(await res.text()).slice(0, 400)}`;
  const since = Date.now();
  const total = Object.values(expected).reduce((n, l) => n + l.length, 0);
  const late = await waitUntil(() => page.evaluate((n) => window.cometDemo.received.length >= n, total), { timeoutMs: 20000 }).then(
    () => `they arrived ${Date.now() - since} ms later`,
    () => 'they did not arrive within 20 s more',
  );
  return `missing ${missing.join(', ')}; page cursor ${cursor}; /poll?wait=0 with it on the restarted sidecar: ${poll}; ${late}`;
}

for (const transport of ['websocket', 'sse', 'xhr-stream', 'iframe', 'long-poll']) {
  test(`${transport}: the page's sidecar restarts mid-stream; every message once`, async () => {
    const cleanups = [];
    try {
      const flags = ['--redis', redis.url, '--heartbeat', '1s', '--workers', '2'];
      let sidecar = await startSidecar(flags);
      const port = sidecar.port;
      cleanups.push(() => sidecar.stop());
      const context = await browser.newContext();
      cleanups.push(() => context.close());
      const channels = [`rs-a-${transport}`, `rs-b-${transport}`];
      // stall: a connection cut without the browser reporting it (an iframe document
      // that just stops growing) is noticed by the missing heartbeats (--heartbeat 1s).
      const query = { ch: channels.join(','), transport, backoff: '100', open: '3000', stall: '3000' };
      if (process.env.COMET_BROWSER_DEBUG) query.debug = '1';
      const page = await openDemo(context, sidecar.url, query);
      await waitOpen(page, transport);
      await waitSubscribed(page, channels);

      const expected = Object.fromEntries(channels.map((ch) => [ch, []]));
      let published = 0;
      const publishRange = async (from, to) => {
        for (let i = from; i <= to; i++) {
          for (const ch of channels) {
            const data = `resume ${ch} ${i}`;
            expected[ch].push({ ...(await publish(publisher.url, ch, data)), data, at: Date.now() });
            published += 1;
          }
        }
      };
      // 1: the sidecar is stopped while this is being published (and delivered);
      // 2: published while it is down; 3: published while the page reconnects.
      const phase1 = publishRange(1, N / 2);
      await waitUntil(() => published >= N / 2, { what: 'publishing to be under way' });
      await sidecar.stop(); // SIGTERM: must exit 0 with clean sanitizers
      await phase1;
      const stoppedAt = published;
      await publishRange(N / 2 + 1, (3 * N) / 4);
      const publishedWhileDown = published - stoppedAt;
      sidecar = await startSidecar(flags, { port });
      const restartedAt = Date.now();
      await publishRange((3 * N) / 4 + 1, N);
      try {
        await waitReceived(page, 2 * N, 40000);
      } catch (err) {
        err.message += `\n${await diagnose(page, sidecar, expected, restartedAt)}`;
        throw err;
      }
      const state = await demoState(page);
      const counts = assertExactlyOnce(state.received, expected, transport);
      assert.deepEqual(state.resets, [], 'Redis kept the history: no reset');
      assert.equal(state.transport, transport, 'still on the same transport after the restart');
      assert.deepEqual(state.transports, [transport]);
      console.log(
        `resume over ${transport}: page's sidecar stopped during the first ${stoppedAt} of ${2 * N} publishes, ${publishedWhileDown} published while it was down; ` +
          `received ${JSON.stringify(counts)}, exactly once, in order; states ${state.states.map((s) => s.state).join(' → ')}`,
      );
    } finally {
      await runCleanups(cleanups);
    }
  });
}

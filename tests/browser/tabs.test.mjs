// Tab sharing: three tabs of the demo page (one browser profile, same origin) hold ONE
// connection to the sidecar between them (checked with the sidecar's /healthz session
// counts), all three receive every message, and closing the leader tab while messages
// are being published loses nothing: another tab takes over from the oldest position
// any tab holds, and each tab drops what it already had.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  assertExactlyOnce,
  demoState,
  healthz,
  launchBrowser,
  openDemo,
  publish,
  runCleanups,
  startSidecar,
  waitOpen,
  waitReceived,
  waitSubscribed,
  waitUntil,
} from './lib/harness.mjs';

const N = 200;

/** Sessions the sidecar holds per transport (publishes excluded). */
async function sessions(sidecar) {
  const s = (await healthz(sidecar.url)).sessions;
  return { ws: s.ws, sse: s.sse, stream: s.stream, poll: s.poll };
}

async function leaderOf(pages) {
  const flags = await Promise.all(pages.map((p) => p.evaluate(() => window.cometDemo.conn.isLeader)));
  assert.equal(flags.filter(Boolean).length, 1, `exactly one leader: ${flags}`);
  return flags.indexOf(true);
}

for (const transport of ['websocket', 'sse']) {
  test(`three tabs, one ${transport} connection; closing the leader loses nothing`, async () => {
    const cleanups = [];
    try {
      const sidecar = await startSidecar(['--heartbeat', '1s', '--workers', '2']);
      cleanups.push(() => sidecar.stop());
      const browser = await launchBrowser();
      cleanups.push(() => browser.close());
      const context = await browser.newContext();
      const channels = [`tabs-a-${transport}`, `tabs-b-${transport}`];
      const query = { ch: channels.join(','), transport, backoff: '50', debug: process.env.COMET_BROWSER_DEBUG ? '1' : '' };
      const pages = [];
      for (let i = 0; i < 3; i++) pages.push(await openDemo(context, sidecar.url, query));
      for (const p of pages) {
        await waitOpen(p, transport);
        await waitSubscribed(p, channels);
      }
      const key = transport === 'websocket' ? 'ws' : 'sse';
      const one = { ws: 0, sse: 0, stream: 0, poll: 0, [key]: 1 };
      assert.deepEqual(await sessions(sidecar), one, 'one connection for three tabs');
      const leader = await leaderOf(pages);
      const followers = pages.filter((_, i) => i !== leader);

      // First half: everybody gets it.
      const expected = Object.fromEntries(channels.map((ch) => [ch, []]));
      const pub = async (from, to) => {
        for (let i = from; i <= to; i++) {
          for (const ch of channels) {
            const data = `tab msg ${ch} ${i}`;
            expected[ch].push({ ...(await publish(sidecar.url, ch, data)), data });
          }
        }
      };
      await pub(1, N / 2);
      for (const p of pages) await waitReceived(p, N);
      for (const [i, p] of pages.entries()) assertExactlyOnce((await demoState(p)).received, expected, `tab ${i}`);

      // Second half, and the leader tab closes while it is being published.
      const rest = pub(N / 2 + 1, N);
      await waitUntil(() => expected[channels[0]].length >= N / 2 + 20, { what: 'publishing to be under way' });
      await pages[leader].close();
      await rest;
      const counts = [];
      for (const [i, p] of followers.entries()) {
        await waitReceived(p, 2 * N);
        const state = await demoState(p);
        counts.push(assertExactlyOnce(state.received, expected, `follower ${i}`));
        assert.deepEqual(state.resets, []);
        assert.deepEqual(p.problems, []);
      }
      const newLeader = await leaderOf(followers);
      // The old leader's connection goes away; the new leader holds the only one.
      await waitUntil(async () => JSON.stringify(await sessions(sidecar)) === JSON.stringify(one), {
        what: 'one sidecar session again',
        detail: async () => JSON.stringify(await sessions(sidecar)),
      });
      console.log(
        `tabs over ${transport}: 3 tabs, sidecar sessions ${JSON.stringify(one)}; leader (tab ${leader}) closed after ` +
          `${N / 2 + 20}+ of ${N} per channel; the 2 others received ${JSON.stringify(counts)} of ${2 * N} each, exactly once; ` +
          `tab ${pages.indexOf(followers[newLeader])} took over`,
      );
    } finally {
      await runCleanups(cleanups);
    }
  });
}

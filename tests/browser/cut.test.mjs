// The connection is cut mid-stream: the page reaches the sidecar through a TCP proxy
// that drops every connection (and refuses new ones) for a while. Messages published
// meanwhile reach the page when it gets through again, by resuming from its cursors;
// over each transport the page ends with every message exactly once, in order, still
// on the same transport.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertExactlyOnce,
  demoState,
  launchBrowser,
  openDemo,
  publishInterleaved,
  startSidecar,
  waitOpen,
  waitReceived,
  waitSubscribed,
  waitUntil,
} from './lib/harness.mjs';
import { startCutProxy } from './lib/proxy.mjs';

const N = 40; // per channel and phase: before the cut, during it, after it
let sidecar;
let browser;

before(async () => {
  sidecar = await startSidecar(['--heartbeat', '1s', '--workers', '2']);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await sidecar?.stop();
});

const CASES = ['websocket', 'sse', 'xhr-stream', 'iframe', 'multipart', 'long-poll', 'jsonp', 'poll'];

for (const transport of CASES) {
  test(`${transport}: cut mid-stream, resumed, every message once`, async () => {
    const proxy = await startCutProxy(sidecar);
    const context = await browser.newContext();
    try {
      const crossOrigin = transport === 'jsonp';
      const channels = [`cut-a-${transport}`, `cut-b-${transport}`];
      // stall: a cut the browser does not report (the iframe's document just stops
      // growing) is noticed by the missing heartbeats (--heartbeat 1s).
      const query = { ch: channels.join(','), transport, backoff: '100', open: '3000', poll: '100', stall: '3000' };
      if (crossOrigin) query.server = proxy.url;
      const page = await openDemo(context, crossOrigin ? `http://localhost:${proxy.port}` : proxy.url, query);
      await waitOpen(page, transport);
      await waitSubscribed(page, channels);

      const before = await publishInterleaved(sidecar.url, channels, N, 'before');
      await waitReceived(page, 2 * N);
      proxy.cut();
      await waitUntil(() => page.evaluate(() => window.cometDemo.conn.state === 'reconnecting'), {
        what: 'the page to notice the cut',
      });
      const during = await publishInterleaved(sidecar.url, channels, N, 'during');
      proxy.restore();
      await waitOpen(page, transport);
      const afterCut = await publishInterleaved(sidecar.url, channels, N, 'after');
      await waitReceived(page, 6 * N);
      const expected = Object.fromEntries(channels.map((ch) => [ch, [...before[ch], ...during[ch], ...afterCut[ch]]]));
      const state = await demoState(page);
      const counts = assertExactlyOnce(state.received, expected, transport);
      assert.deepEqual(state.transports, [transport]);
      assert.deepEqual(state.resets, []);
      console.log(
        `cut over ${transport}: received ${JSON.stringify(counts)} of ${6 * N} (${2 * N} published during the cut), exactly once; ` +
          `proxy: ${proxy.stats.cut} connections cut, ${proxy.stats.refused} refused while down`,
      );
    } finally {
      await context.close();
      await proxy.close();
    }
  });
}

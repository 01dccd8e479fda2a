// Reset notices reach the page's 'reset' listeners, and delivery goes on from the
// position they give:
//  * history-expired: the page is cut off (TCP proxy) while more messages than
//    --history-size are published; on resume it gets a reset, then the retained ones;
//  * epoch-changed: the sidecar (embedded bus) restarts on the same port, so channel
//    sequences start again under new epochs; the page's old cursor gets a reset, then
//    the new messages.

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

const HISTORY = 10;
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const TRANSPORTS = ['websocket', 'sse', 'xhr-stream', 'long-poll'];

for (const transport of TRANSPORTS) {
  test(`${transport}: history-expired reset, then the retained messages`, async () => {
    const sidecar = await startSidecar(['--heartbeat', '1s', '--workers', '2', '--history-size', String(HISTORY)]);
    const proxy = await startCutProxy(sidecar);
    const context = await browser.newContext();
    try {
      const channels = [`hx-a-${transport}`, `hx-b-${transport}`];
      const page = await openDemo(context, proxy.url, { ch: channels.join(','), transport, backoff: '100', stall: '3000' });
      await waitOpen(page, transport);
      await waitSubscribed(page, channels);
      const first = await publishInterleaved(sidecar.url, channels, 5, 'first');
      await waitReceived(page, 10);
      proxy.cut();
      await waitUntil(() => page.evaluate(() => window.cometDemo.conn.state === 'reconnecting'), { what: 'the cut to be noticed' });
      const missed = await publishInterleaved(sidecar.url, channels, 3 * HISTORY, 'missed');
      proxy.restore();
      await waitOpen(page, transport);
      const later = await publishInterleaved(sidecar.url, channels, 5, 'later');
      const retained = (ch) => missed[ch].slice(-HISTORY);
      await waitReceived(page, 2 * (5 + HISTORY + 5));
      const state = await demoState(page);
      const expected = Object.fromEntries(channels.map((ch) => [ch, [...first[ch], ...retained(ch), ...later[ch]]]));
      assertExactlyOnce(state.received, expected, transport);
      assert.deepEqual(
        state.resets.map((r) => [r.ch, r.reason, r.id]).sort(),
        channels.map((ch) => [ch, 'history-expired', missed[ch].at(-HISTORY).id - 1]).sort(),
      );
      console.log(
        `history-expired over ${transport}: ${3 * HISTORY} missed per channel, reset to ` +
          `${state.resets.map((r) => `${r.ch}@${r.epoch}.${r.id}`).join(', ')}, then ${HISTORY} retained + 5 new, exactly once`,
      );
    } finally {
      await context.close();
      await proxy.close();
      await sidecar.stop();
    }
  });

  test(`${transport}: epoch-changed reset after the sidecar restarts with a fresh bus`, async () => {
    let sidecar = await startSidecar(['--heartbeat', '1s', '--workers', '2']);
    const port = sidecar.port;
    const context = await browser.newContext();
    try {
      const channels = [`ep-a-${transport}`, `ep-b-${transport}`];
      const page = await openDemo(context, sidecar.url, { ch: channels.join(','), transport, backoff: '100' });
      await waitOpen(page, transport);
      await waitSubscribed(page, channels);
      const old = await publishInterleaved(sidecar.url, channels, 5, 'old');
      await waitReceived(page, 10);
      await sidecar.stop();
      sidecar = await startSidecar(['--heartbeat', '1s', '--workers', '2'], { port });
      await waitUntil(() => page.evaluate(() => window.cometDemo.resets.length >= 2), { what: 'both resets', timeoutMs: 20000 });
      const fresh = await publishInterleaved(sidecar.url, channels, 5, 'new');
      await waitReceived(page, 20);
      const state = await demoState(page);
      const expected = Object.fromEntries(channels.map((ch) => [ch, [...old[ch], ...fresh[ch]]]));
      assertExactlyOnce(state.received, expected, transport);
      assert.deepEqual(state.resets.map((r) => [r.ch, r.reason]).sort(), channels.map((ch) => [ch, 'epoch-changed']).sort());
      for (const ch of channels) assert.notEqual(old[ch][0].epoch, fresh[ch][0].epoch);
      console.log(`epoch-changed over ${transport}: resets ${state.resets.map((r) => `${r.ch}@${r.epoch}.${r.id}`).join(', ')}; 10 old + 10 new, exactly once`);
    } finally {
      await context.close();
      await sidecar.stop();
    }
  });
}

// Fallback: the sidecar refuses some transports (--transports; a refused WebSocket
// upgrade gets 403). With no transport forced, the client walks down its ladder by
// itself, ends on the first one that works, receives everything, and remembers the
// choice for the session (a reload starts there directly).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  assertExactlyOnce,
  demoState,
  launchBrowser,
  openDemo,
  publishInterleaved,
  runCleanups,
  startSidecar,
  waitOpen,
  waitReceived,
  waitSubscribed,
} from './lib/harness.mjs';

const N = 100;
const CASES = [
  { enabled: 'sse,stream,poll', expect: 'sse', skipped: ['websocket'] },
  { enabled: 'stream,poll', expect: 'xhr-stream', skipped: ['websocket', 'sse'] },
  { enabled: 'poll', expect: 'long-poll', skipped: ['websocket', 'sse', 'xhr-stream', 'iframe'] },
];

for (const c of CASES) {
  test(`--transports ${c.enabled}: the client ends on ${c.expect} by itself and loses nothing`, async () => {
    const cleanups = [];
    try {
      const sidecar = await startSidecar(['--transports', c.enabled, '--heartbeat', '1s', '--workers', '2']);
      cleanups.push(() => sidecar.stop());
      const browser = await launchBrowser();
      cleanups.push(() => browser.close());
      const context = await browser.newContext();
      const channels = [`fa-${c.expect}`, `fb-${c.expect}`];
      const page = await openDemo(context, sidecar.url, { ch: channels.join(','), open: '3000', backoff: '50' });
      await waitOpen(page, c.expect);
      await waitSubscribed(page, channels);
      const expected = await publishInterleaved(sidecar.url, channels, N);
      await waitReceived(page, 2 * N);
      const state = await demoState(page);
      const counts = assertExactlyOnce(state.received, expected, c.expect);
      assert.deepEqual(state.transports, [...c.skipped, c.expect], 'the ladder, in order');
      // Each refused transport was reported (403 or a failed open).
      assert.ok(state.errors.length >= c.skipped.length, JSON.stringify(state.errors));
      console.log(`--transports ${c.enabled}: tried ${state.transports.join(' → ')}; received ${JSON.stringify(counts)} of ${2 * N}, exactly once`);

      // Remembered for the session: a reload goes straight to it.
      await page.reload({ waitUntil: 'load' });
      await waitOpen(page, c.expect);
      const again = await demoState(page);
      assert.deepEqual(again.transports, [c.expect], 'after a reload only the remembered transport was tried');
      assert.deepEqual(again.errors, []);
    } finally {
      await runCleanups(cleanups);
    }
  });
}

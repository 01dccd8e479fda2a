// Buffering-proxy detection: behind a proxy that holds responses until 256 KiB of body
// (and does not do WebSocket), no streaming transport delivers its first bytes within
// the open window; the client steps down the ladder by itself to long-poll, whose
// answers are whole responses, and receives everything.

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
import { startBufferingProxy } from './lib/proxy.mjs';

const N = 100;

test('behind a buffering proxy the client ends on long-poll by itself and loses nothing', async () => {
  const cleanups = [];
  try {
    const sidecar = await startSidecar(['--heartbeat', '1s', '--workers', '2']);
    cleanups.push(() => sidecar.stop());
    const proxy = await startBufferingProxy(sidecar);
    cleanups.push(() => proxy.close());
    const browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const context = await browser.newContext();
    const channels = ['buf-a', 'buf-b'];
    const started = Date.now();
    const page = await openDemo(context, proxy.url, { ch: channels.join(','), open: '1500', backoff: '50' });
    await waitOpen(page, 'long-poll', 30000);
    const tookMs = Date.now() - started;
    await waitSubscribed(page, channels);
    const expected = await publishInterleaved(sidecar.url, channels, N);
    await waitReceived(page, 2 * N);
    const state = await demoState(page);
    const counts = assertExactlyOnce(state.received, expected, 'behind the proxy');
    assert.deepEqual(state.transports, ['websocket', 'sse', 'xhr-stream', 'iframe', 'long-poll']);
    assert.ok(state.errors.some((e) => /nothing within 1500 ms/.test(e)), JSON.stringify(state.errors));
    assert.ok(proxy.stats.upgradesRefused >= 1);
    console.log(
      `buffering proxy: tried ${state.transports.join(' → ')} in ${tookMs} ms; received ${JSON.stringify(counts)} of ${2 * N}, exactly once`,
    );
  } finally {
    await runCleanups(cleanups);
  }
});

// The per-transport delivery check shared by transports_*.test.mjs: for each case the
// demo page, forced onto that transport, subscribes to two channels; `n` messages are
// published to each, and every one must arrive once, in order, with its data intact.
// Streaming responses are cut short by a small --stream-byte-budget, so the
// reconnect-with-cursor path runs several times per streaming transport. A screenshot
// of the page per transport goes to tests/artifacts/screenshots/<transport>.png.
//
// A case: {transport, n = 200, crossOrigin = false, query = {}, shot = true, pad = 0}.
// pad: bytes of JSON-like text added to each message; with a WebSocket the case also
// checks (CDP) that Chromium negotiated permessage-deflate, so long messages arrive
// compressed and Chromium inflates the sidecar's shared frames.
// crossOrigin: the page comes from http://localhost:PORT and addresses the sidecar as
// http://127.0.0.1:PORT (JSONP's use; CORS for the XHR-based transports).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertExactlyOnce,
  demoState,
  launchBrowser,
  openDemo,
  publishInterleaved,
  screenshot,
  startSidecar,
  waitOpen,
  waitReceived,
  waitSubscribed,
} from './harness.mjs';

/** `tls`: the page and every transport over https/wss (a self-signed certificate). */
export function runTransportCases(cases, { tls = false } = {}) {
  let sidecar;
  let browser;
  const results = [];

  before(async () => {
    sidecar = await startSidecar(['--heartbeat', '1s', '--stream-byte-budget', '16k', '--workers', '2'], { tls });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await sidecar?.stop();
    for (const r of results) console.log(r);
  });

  for (const c of cases) {
    const n = c.n ?? 200;
    const label = `${c.transport}${c.crossOrigin ? ' (cross-origin)' : ''}${c.pad ? ` (${c.pad}-byte messages)` : ''}${tls ? ' over TLS' : ''}`;
    test(`${label}: 2 channels × ${n} messages, each once, in order`, async () => {
      const tag = `${c.transport}${c.crossOrigin ? '-x' : ''}${c.pad ? '-p' : ''}`;
      const channels = [`a-${tag}`, `b-${tag}`];
      const context = await browser.newContext({ viewport: { width: 900, height: 760 }, ignoreHTTPSErrors: tls });
      try {
        const scheme = tls ? 'https' : 'http';
        const pageOrigin = c.crossOrigin ? `${scheme}://localhost:${sidecar.port}` : sidecar.url;
        const query = { ch: channels.join(','), transport: c.transport, debug: '1', ...(c.query ?? {}) };
        if (c.crossOrigin) query.server = sidecar.url;
        const handshakes = [];
        const watchHandshakes = async (p) => {
          const cdp = await context.newCDPSession(p);
          await cdp.send('Network.enable');
          cdp.on('Network.webSocketHandshakeResponseReceived', (e) => handshakes.push(e.response.headers));
        };
        const page = await openDemo(context, pageOrigin, query, { beforeLoad: c.pad ? watchHandshakes : undefined });
        const logs = [];
        page.on('console', (m) => logs.push(m.text()));
        await waitOpen(page, c.transport);
        await waitSubscribed(page, channels);
        const expected = await publishInterleaved(sidecar.url, channels, n, label, { pad: c.pad ?? 0 });
        await waitReceived(page, 2 * n);
        const state = await demoState(page);
        const counts = assertExactlyOnce(state.received, expected, label);
        assert.deepEqual(state.transports, [c.transport], 'no other transport was used');
        assert.equal(state.resets.length, 0);
        assert.deepEqual(page.problems, []);
        if (c.pad && c.transport === 'websocket') {
          const extensions = handshakes.map((h) => h['Sec-WebSocket-Extensions'] ?? h['sec-websocket-extensions'] ?? '');
          assert.ok(extensions.some((x) => /permessage-deflate/.test(x)), `deflate negotiated: ${JSON.stringify(extensions)}`);
        }
        const restarts = logs.filter((l) => / reconnect /.test(`${l} `)).length;
        let shot = '';
        if (c.shot !== false && !tls) shot = await screenshot(page, c.transport);
        results.push(
          `${label}: received ${Object.entries(counts).map(([ch, k]) => `${ch}=${k}`).join(' ')} of ${2 * n} published, ` +
            `0 lost, 0 duplicated, in order; planned stream restarts ${restarts}${shot ? `; screenshot ${shot}` : ''}`,
        );
      } finally {
        await context.close();
      }
    });
  }
}

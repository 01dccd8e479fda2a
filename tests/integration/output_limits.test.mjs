// Output memory beyond the per-connection hard limit (docs/protocol.md, "Output memory"):
// the soft limit held for a heartbeat interval, and the process-wide budget that cuts the
// slowest readers first. A reading client is never cut; /metrics counts both.

import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';

import { openWs } from './lib/clients.mjs';
import { publishOk, startSidecar, uniqueChannel } from './lib/sidecar.mjs';

const BIG = 60000;
const payload = (i) => `#${i}:` + 'x'.repeat(BIG);

/** An SSE subscriber that reads its head, then nothing more (the socket is paused). */
async function stalledSse(sc, ch) {
  const socket = net.connect(sc.port, '127.0.0.1');
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => {});
  socket.write(`GET /sse?ch=${ch} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await new Promise((resolve) => socket.once('data', resolve));
  socket.pause();
  return { socket };
}

async function metric(sc, name) {
  const text = await (await fetch(`${sc.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Publishes big messages until `done()` (bounded: 400 × 60 KB). */
async function publishUntil(sc, ch, done) {
  for (let i = 1; i <= 400; i++) {
    await publishOk(sc, ch, payload(i));
    if (i % 4 === 0 && (await done())) return i;
  }
  throw new Error('not done after 400 messages of 60 KB');
}

describe('output memory', () => {
  test('soft limit: a stream over it for a heartbeat interval is cut, below the hard limit', async () => {
    const sc = await startSidecar([
      '--max-output-bytes', '64m', '--max-output-soft-bytes', '256k', '--heartbeat', '300ms',
      '--max-output-total-bytes', '1g',
    ]);
    try {
      const ch = uniqueChannel('soft');
      const reader = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
      await reader.messages.take();
      const slow = await stalledSse(sc, ch);
      const sent = await publishUntil(sc, ch, async () => (await metric(sc, 'comet_slow_readers_cut_total')) >= 1);
      slow.socket.destroy();
      assert.match(sc.stderr, /over --max-output-soft-bytes for a heartbeat interval/);
      assert.ok(sent * BIG < 64 * 1024 * 1024, 'cut long before the hard limit');
      assert.ok((await metric(sc, 'comet_slow_readers_cut_total')) >= 1);
      // The reading client got every message, in order, and was not cut.
      const got = await reader.messages.takeN(sent, 20000);
      assert.deepEqual(got.map((m) => m.data.split(':')[0]), Array.from({ length: sent }, (_, i) => `#${i + 1}`));
      reader.ws.close();
    } finally {
      await sc.stop();
    }
  });

  test('process budget: over --max-output-total-bytes the slowest reader is cut first', async () => {
    const sc = await startSidecar([
      '--workers', '1', '--max-output-bytes', '64m', '--max-output-soft-bytes', '64m',
      '--heartbeat', '60s', '--max-output-total-bytes', '2m',
    ]);
    try {
      const ch = uniqueChannel('budget');
      const reader = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
      await reader.messages.take();
      const slow = await stalledSse(sc, ch);
      await publishUntil(sc, ch, async () => (await metric(sc, 'comet_output_budget_cuts_total')) >= 1);
      slow.socket.destroy();
      assert.match(sc.stderr, /over --max-output-total-bytes, the slowest reader first/);
      assert.ok((await metric(sc, 'comet_output_budget_cuts_total')) >= 1);
      assert.equal(reader.ws.readyState, 1, 'the reading client is still connected');
      reader.ws.close();
      // The cut connection's memory is given back to the system within a second or two
      // (malloc_trim once the worker has freed connections and holds no unsent output).
      const deadline = Date.now() + 5000;
      while ((await metric(sc, 'comet_memory_trims_total')) < 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok((await metric(sc, 'comet_memory_trims_total')) >= 1);
      assert.equal(await metric(sc, 'comet_unsent_bytes'), 0);
    } finally {
      await sc.stop();
    }
  });
});

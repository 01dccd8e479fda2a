// The attack suite of issue 12: each attack bounded in time and count, on loopback,
// each against its own sidecar with small limits. Attacks come from 127.0.0.2 and up:
// 127.0.0.1 and ::1 are --trusted-proxies by default and not limited per address.
// Memory is the sidecar's VmRSS (/proc/<pid>/status); bounds hold under ASan (CTest
// runs the ASan build), which inflates RSS. A summary table (one row per attack: what
// was sent, the limit, what was measured) is printed at the end.
//
// COMET_ATTACK_FLOOD_MS shortens the ping flood (default 10000, what CTest runs).
// Static files (symlinks, dotfiles: 404) are covered by http.test.mjs and Host /
// obs-fold cases (400) by bad_input.test.mjs; they are listed in the table only.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
  fmtMiB,
  fmtMs,
  HealthProbe,
  kernelTcpKiB,
  measuredAsanEnv,
  MiB,
  metrics,
  openFileLimit,
  openMany,
  orAfter,
  PingFlooder,
  printTable,
  RssSampler,
  rssKiB,
  runsUnderAsan,
  timedRequest,
} from './lib/attack.mjs';
import { openWs } from './lib/clients.mjs';
import {
  delay,
  publishOk,
  RawWebSocket,
  SIDECAR_BIN,
  startSidecar,
  uniqueChannel,
  waitUntil,
} from './lib/sidecar.mjs';

const FLOOD_MS = Number(process.env.COMET_ATTACK_FLOOD_MS || 10000);
// /healthz latency allowed while under attack (a fresh connection each time, from
// 127.0.0.1). The issue asks for < 100 ms.
const HEALTHZ_MAX_MS = 100;

const rows = [];
let asan = null;
function noteBuild(sc) {
  if (asan === null) asan = runsUnderAsan(sc.child.pid, SIDECAR_BIN);
}

after(() => {
  rows.push(
    {
      attack: '6. static symlink / dotfile',
      sent: 'GET /passwd (symlink to /etc/passwd), /alias.html (symlink inside), /.env, /.git/config',
      limit: 'symlinks and dotfiles not served',
      measured: '404, no file content (http.test.mjs, "files from --static-dir")',
    },
    {
      attack: '7. Host cases',
      sent: 'HTTP/1.1 without Host, two Hosts (1.1 and 1.0), obs-fold with space and tab',
      limit: 'RFC 9112: one Host, no obs-fold',
      measured: '400 + close (bad_input.test.mjs)',
    },
  );
  printTable(`\nAttack summary (${asan ? 'ASan' : 'release'} build: ${SIDECAR_BIN})`, rows);
});

/** Asserts the latency probe saw no failure and nothing slower than `maxMs`. */
function assertHealthy(stats, maxMs, what) {
  assert.deepEqual(stats.failures, [], `/healthz failed during ${what}`);
  assert.ok(stats.count > 0, `no /healthz answer during ${what}`);
  assert.ok(
    stats.max < maxMs,
    `/healthz took ${stats.max.toFixed(1)} ms (max ${maxMs}) during ${what}; slow ones: ${JSON.stringify(stats.slow)}`,
  );
}

function healthSummary(stats) {
  return `/healthz ×${stats.count}: p50 ${fmtMs(stats.p50)}, max ${fmtMs(stats.max)}`;
}

// ---------------------------------------------------------------------------------------
// 1. A deeply nested JSON command.

describe('nested JSON in a WebSocket frame', () => {
  test('200,000 nested [ or {"a": get the error answer; the socket and the server go on', async () => {
    const sc = await startSidecar(['--max-message-bytes', '1m'], { env: measuredAsanEnv() });
    noteBuild(sc);
    let sub = null;
    let attacker = null;
    try {
      const ch = uniqueChannel('nested');
      sub = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
      assert.equal((await sub.messages.take()).type, 'subscribed');
      attacker = await RawWebSocket.connect(sc.port, '/ws');
      const before = rssKiB(sc.child.pid);
      const sampler = new RssSampler(sc.child.pid, 50);
      const cases = [
        ['[ ×200,000', '['.repeat(200000)],
        ['{"a": ×40,000', '{"a":'.repeat(40000)],
        ['[ ×1 MiB', '['.repeat(1024 * 1024)], // the largest frame --max-message-bytes 1m lets in
      ];
      const times = [];
      for (const [, text] of cases) {
        const t0 = performance.now();
        attacker.sendText(text);
        const answer = await attacker.nextJson(20000);
        times.push(performance.now() - t0);
        assert.deepEqual(answer, { type: 'error', error: 'expected a JSON object with a "cmd" string' });
      }
      attacker.sendText('{"cmd":"ping"}');
      assert.deepEqual(await attacker.nextJson(), { type: 'pong' });
      const peak = sampler.stop();
      assert.ok(sc.running, 'the sidecar died');
      // A subscriber on another socket still gets what is published.
      await publishOk(sc, ch, 'after the nested frames');
      assert.equal((await sub.messages.take()).data, 'after the nested frames');
      rows.push({
        attack: '1. nested JSON',
        sent: cases.map(([name]) => name).join(', ') + ' in one text frame each',
        limit: '--max-message-bytes 1m',
        measured:
          `error answered in ${times.map(fmtMs).join(' / ')}; socket open (ping→pong); ` +
          `RSS ${fmtMiB(before)} → peak ${fmtMiB(peak)}`,
      });
    } finally {
      sub?.ws.terminate();
      attacker?.destroy();
      await sc.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------
// 2. Ping flood: clients that send pings as fast as they can and never read the pongs.

describe('ping flood', () => {
  const MAX_OUTPUT_KIB = 256;
  const FLOODERS = 4;

  test(`${FLOODERS} clients flooding pings for ${FLOOD_MS / 1000} s: memory bounded, others served`, async () => {
    const sc = await startSidecar(['--max-output-bytes', `${MAX_OUTPUT_KIB}k`, '--request-timeout', '3s'], {
      env: measuredAsanEnv(),
    });
    noteBuild(sc);
    const ch = uniqueChannel('flood');
    const normal = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
    let flooders = [];
    try {
      assert.equal((await normal.messages.take()).type, 'subscribed');
      // Warm up what every connection uses once, then take the baseline.
      await publishOk(sc, ch, 'warm-up');
      await normal.messages.take();
      await delay(200);
      const baseline = rssKiB(sc.child.pid);
      const sampler = new RssSampler(sc.child.pid, 200);
      const probe = new HealthProbe(sc.port, { intervalMs: 100 });
      flooders = Array.from(
        { length: FLOODERS },
        (_, i) => new PingFlooder(sc.port, { localAddress: `127.0.0.${2 + i}`, durationMs: FLOOD_MS }),
      );

      // Meanwhile a normal client publishes and receives, every 100 ms.
      const delivery = [];
      let sent = 0;
      const until = Date.now() + FLOOD_MS;
      while (Date.now() < until) {
        const t0 = performance.now();
        sent += 1;
        await publishOk(sc, ch, `during the flood ${sent}`);
        const msg = await normal.messages.take(5000);
        delivery.push(performance.now() - t0);
        assert.equal(msg.data, `during the flood ${sent}`);
        await delay(100);
      }
      await Promise.all(flooders.map((f) => f.done));
      const health = await probe.stop();
      const peak = sampler.stop();
      const growth = peak - baseline;
      const connections = flooders.reduce((n, f) => n + f.connections, 0);
      const cut = flooders.reduce((n, f) => n + f.closedByServer, 0);
      const sentBytes = flooders.reduce((n, f) => n + f.bytesSent, 0);
      const errors = flooders.flatMap((f) => f.errors);

      // Per flooder the server holds at most: its unsent pongs (reading stops past half of
      // --max-output-bytes; one 64 KiB read's worth of pongs may land on top), the frames
      // of that read waiting in the input buffer, and the allocator's overhead on those.
      // Plus slack for the allocator: measured +1.6 MiB release, +15 MiB ASan (redzones and
      // the 8 MiB quarantine of measuredAsanEnv; with ASan's default 256 MiB quarantine the
      // churn of 130 MiB of pings shows as +221 MiB). The unfixed server grew by 2-3 GB.
      const perFlooderKiB = MAX_OUTPUT_KIB + 64 + 64;
      const slackKiB = (asan ? 48 : 16) * MiB;
      const boundKiB = FLOODERS * perFlooderKiB + slackKiB;
      const maxDelivery = Math.max(...delivery);
      rows.push({
        attack: '2. ping flood',
        sent:
          `${FLOODERS} clients × ${FLOOD_MS / 1000} s of masked 125-byte pings, never reading ` +
          `(${(sentBytes / 1048576).toFixed(1)} MiB taken in, ${connections} connections, ${cut} closed by the server)`,
        limit: `--max-output-bytes ${MAX_OUTPUT_KIB}k, --request-timeout 3s (write timeout)`,
        measured:
          `RSS ${fmtMiB(baseline)} → peak ${fmtMiB(peak)} (+${fmtMiB(growth)}, bound +${fmtMiB(boundKiB)}); ` +
          `kernel TCP memory peak ${fmtMiB(sampler.kernelPeak)}; ` +
          `${healthSummary(health)}; publish→receive ×${delivery.length} max ${fmtMs(maxDelivery)}`,
      });
      if (errors.length > 0) console.log(`ping flood: flooder errors ${JSON.stringify(errors.slice(0, 5))}`);
      assert.ok(sc.running, 'the sidecar died');
      assert.ok(
        growth < boundKiB,
        `RSS grew by ${fmtMiB(growth)} during the ping flood (bound ${fmtMiB(boundKiB)})`,
      );
      assertHealthy(health, HEALTHZ_MAX_MS, 'the ping flood');
      assert.ok(maxDelivery < 1000, `a publish took ${fmtMs(maxDelivery)} to reach a subscriber during the flood`);
      // The flooders were held back (their pongs unread, the server stopped reading them)
      // rather than served: with the write timeout they were closed and came back.
      if (FLOOD_MS >= 6000) assert.ok(cut >= FLOODERS, `only ${cut} flooder connections were closed by the server`);
    } finally {
      await Promise.all(flooders.map((f) => f.stop()));
      normal.ws.terminate();
      await sc.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------
// 3. Slowloris: requests that never end, one more header line every second.

describe('slowloris', () => {
  const TIMEOUT_MS = 2000;
  // Both ends hold one descriptor per connection; leave room under the open-file limit.
  const WANTED = 1000;
  const COUNT = Math.min(WANTED, openFileLimit() - 200);
  const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

  test(`${COUNT} connections trickling headers are all closed within --request-timeout + 1 s`, async () => {
    const sc = await startSidecar(['--request-timeout', `${TIMEOUT_MS}ms`]);
    noteBuild(sc);
    let conns = [];
    let ticker = null;
    try {
      const probe = new HealthProbe(sc.port, { intervalMs: 100 });
      const baseline = rssKiB(sc.child.pid);
      const sampler = new RssSampler(sc.child.pid, 200);
      // Opened in batches; each sends its request line as soon as it is connected.
      const started = performance.now();
      for (let i = 0; i < COUNT; i += 100) {
        const batch = await openMany(sc.port, Math.min(100, COUNT - i), { localAddresses: SOURCES });
        for (const c of batch) c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        conns.push(...batch);
      }
      const opened = performance.now() - started;
      let line = 0;
      ticker = setInterval(() => {
        line += 1;
        for (const c of conns) if (!c.isClosed) c.write(`X-Slow-${line}: ${'x'.repeat(20)}\r\n`);
      }, 1000);
      await orAfter(Promise.all(conns.map((c) => c.closed)), opened + TIMEOUT_MS + 1000 + 3000);
      clearInterval(ticker);
      ticker = null;
      const health = await probe.stop();
      const peak = sampler.stop();

      const open = conns.filter((c) => !c.isClosed);
      const lifetimes = conns.filter((c) => c.isClosed).map((c) => c.closedAt - c.firstByteSentAt);
      const with408 = conns.filter((c) => c.response()?.status === 408).length;
      const maxLife = Math.max(...lifetimes);
      const minLife = Math.min(...lifetimes);
      rows.push({
        attack: '3. slowloris',
        sent: `${COUNT} connections from ${SOURCES.length} addresses, "GET /healthz" + a header line every 1 s (${line} lines)`,
        limit: `--request-timeout ${TIMEOUT_MS / 1000}s from the first byte`,
        measured:
          `all closed ${fmtMs(minLife)}–${fmtMs(maxLife)} after their first byte (${with408} with 408); ` +
          `${healthSummary(health)}; RSS ${fmtMiB(baseline)} → peak ${fmtMiB(peak)}`,
      });
      assert.equal(open.length, 0, `${open.length} slowloris connections still open`);
      assert.ok(maxLife <= TIMEOUT_MS + 1000, `a slowloris connection lived ${fmtMs(maxLife)} after its first byte`);
      // Not cut before its deadline either (the deadline is not an idle timer, nor shorter).
      assert.ok(minLife >= TIMEOUT_MS - 100, `a slowloris connection was closed after ${fmtMs(minLife)}`);
      assert.equal(with408, COUNT, 'every slowloris connection gets a 408 before the close');
      assertHealthy(health, HEALTHZ_MAX_MS, 'the slowloris attack');
    } finally {
      if (ticker) clearInterval(ticker);
      for (const c of conns) c.destroy();
      await sc.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------
// 4. Slow readers: SSE subscribers that never read while big messages are published.

describe('slow readers', () => {
  const READERS = 500;
  const MAX_OUTPUT_KIB = 256;
  const MESSAGE_BYTES = 64 * 1024;
  const MAX_MESSAGES = 3000; // 192 MiB published at most
  // RSS 2 s after the cut may exceed the baseline by this much. Measured: release +2.4 MiB
  // with malloc_trim after the closes (3c2bd46), +22 to +31 MiB without it (glibc keeps
  // the freed buffers); ASan +20 MiB (its own allocator gives pages back, measuredAsanEnv;
  // glibc's malloc_trim does nothing for it).
  const afterSlackKiB = () => (asan ? 40 : 12) * MiB;

  test(`${READERS} SSE readers that never read are cut; memory goes back down`, async () => {
    const sc = await startSidecar([
      '--max-output-bytes',
      `${MAX_OUTPUT_KIB}k`,
      '--max-message-bytes',
      '128k',
      '--history-size',
      '8', // retained messages are not what is measured here
    ], { env: measuredAsanEnv() });
    noteBuild(sc);
    const ch = uniqueChannel('slow');
    const kernelBefore = kernelTcpKiB();
    let conns = [];
    let normal = null;
    try {
      const payload = (i) => `${i}:`.padEnd(MESSAGE_BYTES, 'abcdefghijklmnopqrstuvwxyz');
      normal = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
      assert.equal((await normal.messages.take()).type, 'subscribed');
      await publishOk(sc, ch, 'warm-up');
      await normal.messages.take();
      await delay(300);
      const baseline = rssKiB(sc.child.pid);
      const m0 = await metrics(sc);
      const sampler = new RssSampler(sc.child.pid, 100);

      // Connected and asking for the stream, and never reading a byte of it.
      conns = await openMany(sc.port, READERS, { localAddresses: ['127.0.0.2'], paused: true });
      for (const c of conns) c.write(`GET /sse?ch=${ch} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
      await waitUntil(async () => (await metrics(sc))['comet_sessions{transport="sse"}'] === READERS, {
        timeoutMs: 15000,
        intervalMs: 100,
        what: `${READERS} SSE sessions`,
      });
      const connected = rssKiB(sc.child.pid);

      // Publish until every one of them is cut (the normal subscriber reads all along).
      let published = 0;
      let received = 0;
      const t0 = performance.now();
      let m;
      for (;;) {
        published += 1;
        await publishOk(sc, ch, payload(published));
        while (normal.messages.pending > 0) {
          await normal.messages.take();
          received += 1;
        }
        if (published % 10 === 0 || published >= MAX_MESSAGES) {
          m = await metrics(sc);
          if (m['comet_sessions{transport="sse"}'] === 0 || published >= MAX_MESSAGES) break;
        }
      }
      const cutAfterMs = performance.now() - t0;
      // The normal subscriber got every message.
      while (received < published) {
        await normal.messages.take(10000);
        received += 1;
      }
      await delay(2000);
      const afterKiB = rssKiB(sc.child.pid);
      const peak = sampler.stop();
      const cut = m.comet_slow_readers_cut_total - m0.comet_slow_readers_cut_total;
      const budgetCuts = (m.comet_output_budget_cuts_total ?? 0) - (m0.comet_output_budget_cuts_total ?? 0);
      const mEnd = await metrics(sc);
      // Each reader holds at most --max-output-bytes unsent (plus the message that took
      // it over); messages of 16 KiB and up are shared between readers, not copied.
      const peakBoundKiB = READERS * (MAX_OUTPUT_KIB + MESSAGE_BYTES / 1024) + (asan ? 64 : 32) * MiB;
      rows.push({
        attack: '4. slow readers',
        sent:
          `${READERS} SSE clients never reading; ${published} messages of ${MESSAGE_BYTES / 1024} KiB ` +
          `published (${((published * MESSAGE_BYTES) / 1048576).toFixed(0)} MiB) in ${(cutAfterMs / 1000).toFixed(1)} s`,
        limit: `--max-output-bytes ${MAX_OUTPUT_KIB}k (+ the process-wide budget)`,
        measured:
          `${cut} cut (${budgetCuts} by the budget), sse sessions left ${m['comet_sessions{transport="sse"}']}; ` +
          `RSS ${fmtMiB(baseline)} → ${fmtMiB(connected)} connected → peak ${fmtMiB(peak)} → ` +
          `${fmtMiB(afterKiB)} 2 s after (bounds: peak +${fmtMiB(peakBoundKiB)}, after +${fmtMiB(afterSlackKiB())}; ` +
          `malloc trims ${mEnd.comet_memory_trims_total ?? 'n/a'}); kernel TCP memory peak ${fmtMiB(sampler.kernelPeak)}`,
      });
      assert.ok(sc.running, 'the sidecar died');
      assert.equal(m['comet_sessions{transport="sse"}'], 0, `not all slow readers were cut after ${published} messages`);
      assert.ok(cut >= READERS, `comet_slow_readers_cut_total went up by ${cut}, expected ${READERS}`);
      assert.ok(peak - baseline < peakBoundKiB, `RSS peaked at ${fmtMiB(peak)} (baseline ${fmtMiB(baseline)})`);
      // Depends on malloc_trim after connections close (3c2bd46, 5d9a096): without it
      // glibc keeps the freed buffers and RSS stays near the peak (release: +22 to +31 MiB).
      assert.ok(
        afterKiB < baseline + afterSlackKiB(),
        `RSS 2 s after the cut is ${fmtMiB(afterKiB)}, baseline ${fmtMiB(baseline)} (+${fmtMiB(afterSlackKiB())} allowed), peak ${fmtMiB(peak)}`,
      );
    } finally {
      for (const c of conns) c.destroy();
      normal?.ws.terminate();
      await sc.stop();
      // The kernel held the readers' unsent data (GBs of socket buffers on loopback):
      // let it give that back before the next attack measures latencies.
      await waitUntil(() => kernelTcpKiB() < kernelBefore + 64 * MiB, { timeoutMs: 5000, intervalMs: 100 }).catch(() => {});
    }
  });
});

// ---------------------------------------------------------------------------------------
// 5. Connection caps: per address, and in all.

const BAND = 32; // ConnectionLimits::kOverflowBand
const POLL = (ch) => `GET /poll?ch=${ch}&wait=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
const HEALTHZ_KEEP = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

/** Sends `request` on every conn and returns their answers' statuses. */
async function answers(conns, request) {
  for (const c of conns) c.write(request);
  return Promise.all(conns.map(async (c) => (await c.waitResponse(5000)).status));
}

/**
 * Opens `count` connections from `address` beyond a cap and sorts them: those closed
 * at once (no byte received), and those left open (the overflow band).
 */
async function overflow(port, count, address) {
  const conns = await openMany(port, count, { localAddresses: [address], batch: count, settle: true });
  // A refused socket is closed by the accepting worker right away; give the band's a
  // moment to show they stay open.
  await delay(300);
  const refused = conns.filter((c) => c.isClosed);
  const band = conns.filter((c) => !c.isClosed);
  const closeTimes = refused.map((c) => c.closedAt - (c.connectedAt ?? c.startedAt));
  return { conns, refused, band, closeTimes };
}

describe('connection caps', () => {
  test('per address: 50 accepted, the next 32 answered 503 (or /healthz), the rest closed at once', async () => {
    const CAP = 50;
    const EXTRA = 100;
    const sc = await startSidecar(['--max-connections-per-ip', String(CAP)]);
    noteBuild(sc);
    const ch = uniqueChannel('cap');
    const all = [];
    try {
      const probe = new HealthProbe(sc.port, { intervalMs: 25 });
      const first = await openMany(sc.port, CAP, { localAddresses: ['127.0.0.2'] });
      all.push(...first);
      assert.deepEqual(await answers(first, POLL(ch)), Array(CAP).fill(200));

      const { refused, band, closeTimes, conns } = await overflow(sc.port, EXTRA, '127.0.0.2');
      all.push(...conns);
      assert.equal(band.length, BAND, `${band.length} connections over the cap stayed open`);
      assert.equal(refused.length, EXTRA - BAND);
      for (const c of refused) assert.equal(c.received.length, 0, 'a refused connection got bytes');
      const maxClose = Math.max(...closeTimes);
      assert.ok(maxClose < 100, `a refused connection took ${fmtMs(maxClose)} to be closed`);

      // Another address is not affected.
      const other = await openMany(sc.port, 10, { localAddresses: ['127.0.0.3'] });
      all.push(...other);
      assert.deepEqual(await answers(other, POLL(ch)), Array(10).fill(200));

      // The band: a request is answered 503 with Retry-After, /healthz as usual.
      const half = BAND / 2;
      const refusedAnswers = band.slice(0, half);
      for (const c of refusedAnswers) c.write(POLL(ch));
      const res503 = await Promise.all(refusedAnswers.map((c) => c.waitResponse(5000)));
      assert.deepEqual(res503.map((r) => r.status), Array(half).fill(503));
      assert.ok(res503.every((r) => r.headers['retry-after'] === '5'), 'a 503 without Retry-After: 5');
      assert.deepEqual(await answers(band.slice(half), HEALTHZ_KEEP), Array(BAND - half).fill(200));
      // Either way the band's connections are closed after the answer.
      await Promise.all(band.map((c) => c.closed));

      const m = await metrics(sc);
      assert.equal(m.comet_connections_refused_total, EXTRA);

      // Once the 50 are gone, 127.0.0.2 gets in again.
      for (const c of first) c.destroy();
      await waitUntil(async () => (await metrics(sc)).comet_connections <= other.length + 2, {
        timeoutMs: 5000,
        what: 'the server to see the 50 connections closed',
      });
      const again = await openMany(sc.port, CAP, { localAddresses: ['127.0.0.2'] });
      all.push(...again);
      assert.deepEqual(await answers(again, POLL(ch)), Array(CAP).fill(200));
      assert.equal((await metrics(sc)).comet_connections_refused_total, EXTRA);
      const health = await probe.stop();
      assertHealthy(health, HEALTHZ_MAX_MS, 'the per-address cap attack');
      rows.push({
        attack: '5a. per-address cap',
        sent: `${CAP} + ${EXTRA} connections from 127.0.0.2, 10 from 127.0.0.3, ${CAP} more from 127.0.0.2 after closing`,
        limit: `--max-connections-per-ip ${CAP}, overflow band ${BAND}`,
        measured:
          `${band.length} in the band (${half}× 503 Retry-After: 5, ${BAND - half}× /healthz 200), ` +
          `${refused.length} closed with no byte in ≤ ${fmtMs(maxClose)}; 127.0.0.3 and re-opened 127.0.0.2 served; ` +
          `refused_total ${m.comet_connections_refused_total}; ${healthSummary(health)}`,
      });
    } finally {
      for (const c of all) c.destroy();
      await sc.stop();
    }
  });

  test('in all: --max-connections 20, the band answers /healthz, the rest closed at once', async () => {
    const CAP = 20;
    const EXTRA = 40;
    const sc = await startSidecar(['--max-connections', String(CAP), '--max-connections-per-ip', '0']);
    noteBuild(sc);
    const ch = uniqueChannel('global');
    const all = [];
    try {
      const first = await openMany(sc.port, CAP, { localAddresses: ['127.0.0.3'] });
      all.push(...first);
      assert.deepEqual(await answers(first, POLL(ch)), Array(CAP).fill(200));
      const { refused, band, closeTimes, conns } = await overflow(sc.port, EXTRA, '127.0.0.4');
      all.push(...conns);
      assert.equal(band.length, BAND, `${band.length} connections over the cap stayed open`);
      assert.equal(refused.length, EXTRA - BAND);
      for (const c of refused) assert.equal(c.received.length, 0, 'a refused connection got bytes');
      const maxClose = Math.max(...closeTimes);
      assert.ok(maxClose < 100, `a refused connection took ${fmtMs(maxClose)} to be closed`);
      // With the band full even 127.0.0.1 is refused (the cap counts every address)...
      await assert.rejects(timedRequest(sc.port, HEALTHZ_KEEP, { timeoutMs: 2000 }));
      // ...the band's own connections are answered, then closed: room for a health check.
      const half = BAND / 2;
      const res503 = await Promise.all(
        band.slice(0, half).map((c) => {
          c.write(POLL(ch));
          return c.waitResponse(5000);
        }),
      );
      assert.deepEqual(res503.map((r) => r.status), Array(half).fill(503));
      assert.ok(res503.every((r) => r.headers['retry-after'] === '5'));
      assert.deepEqual(await answers(band.slice(half), HEALTHZ_KEEP), Array(BAND - half).fill(200));
      await Promise.all(band.map((c) => c.closed));
      const latencies = [];
      for (let i = 0; i < 10; i++) {
        const res = await timedRequest(sc.port, HEALTHZ_KEEP);
        assert.equal(res.status, 200);
        latencies.push(res.ms);
      }
      const maxHealth = Math.max(...latencies);
      assert.ok(maxHealth < HEALTHZ_MAX_MS, `/healthz at the cap took ${fmtMs(maxHealth)}`);
      const m = await metrics(sc);
      // The 40, the refused 127.0.0.1 probe, and the 10 health checks in the band.
      assert.equal(m.comet_connections_refused_total, EXTRA + 1 + 10);
      assert.equal(m.comet_connection_limit, CAP);
      for (const c of first) c.destroy();
      await waitUntil(async () => (await metrics(sc)).comet_connections <= 2, {
        timeoutMs: 5000,
        what: 'the server to see the 20 connections closed',
      });
      const again = await openMany(sc.port, CAP, { localAddresses: ['127.0.0.3'] });
      all.push(...again);
      assert.deepEqual(await answers(again, POLL(ch)), Array(CAP).fill(200));
      rows.push({
        attack: '5b. global cap',
        sent: `${CAP} + ${EXTRA} connections (127.0.0.3, 127.0.0.4), /healthz from 127.0.0.1 at the cap`,
        limit: `--max-connections ${CAP}, overflow band ${BAND}`,
        measured:
          `${band.length} in the band (${half}× 503, ${BAND - half}× /healthz 200), ${refused.length} closed in ≤ ${fmtMs(maxClose)}; ` +
          `/healthz from 127.0.0.1 in the band max ${fmtMs(maxHealth)}; refused_total ${m.comet_connections_refused_total}`,
      });
    } finally {
      for (const c of all) c.destroy();
      await sc.stop();
    }
  });
});

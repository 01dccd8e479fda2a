// Fan-out: 1,000 subscribers on one channel each receive a burst of 100 messages with
// no loss, no duplicate and in order: 100,000 deliveries. WebSocket subscribers use the
// `ws` package; the SSE variant uses a light raw-HTTP reader (1,000 EventSource
// instances on fetch would measure the client more than the server).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { WebSocket } from './lib/clients.mjs';
import {
  deferred,
  healthz,
  RawClient,
  SseStream,
  startSidecar,
  uniqueChannel,
  waitUntil,
  withTimeout,
} from './lib/sidecar.mjs';

const SUBSCRIBERS = 1000;
const MESSAGES = 100;
const CONNECT_BATCH = 100;

/** The burst: MESSAGES pipelined POSTs written at once on one keep-alive connection. */
async function publishBurst(sc, ch, payloads) {
  const client = await RawClient.connect(sc.publishPort);
  try {
    let bytes = '';
    for (const data of payloads) {
      bytes += `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nContent-Length: ${Buffer.byteLength(data)}\r\n\r\n${data}`;
    }
    client.write(bytes);
    const answers = [];
    for (let i = 0; i < payloads.length; i++) {
      const res = await client.readResponse(30000);
      assert.equal(res.status, 200, res.body);
      answers.push(res.json);
    }
    return answers;
  } finally {
    client.destroy();
  }
}

/**
 * Per-subscriber bookkeeping shared by both variants: `accept(id, data)` for every
 * message; counts deliveries, duplicates, gaps and wrong payloads.
 */
function makeTally(payloads) {
  const tally = {
    delivered: 0,
    duplicates: 0,
    outOfOrder: 0,
    wrongData: 0,
    complete: 0,
    allComplete: deferred(),
    subscriber() {
      const sub = { next: 1 };
      sub.accept = (id, data) => {
        tally.delivered += 1;
        if (id < sub.next) {
          tally.duplicates += 1;
          return;
        }
        if (id > sub.next) tally.outOfOrder += 1; // a gap: something before it was lost
        if (data !== payloads[id - 1]) tally.wrongData += 1;
        sub.next = id + 1;
        if (id === payloads.length) {
          tally.complete += 1;
          if (tally.complete === SUBSCRIBERS) tally.allComplete.resolve();
        }
      };
      return sub;
    },
    summary() {
      return {
        subscribers: SUBSCRIBERS,
        messages: payloads.length,
        expected: SUBSCRIBERS * payloads.length,
        delivered: tally.delivered,
        duplicates: tally.duplicates,
        outOfOrder: tally.outOfOrder,
        wrongData: tally.wrongData,
        complete: tally.complete,
      };
    },
  };
  return tally;
}

function payloadsFor(tag) {
  return Array.from({ length: MESSAGES }, (_, i) => JSON.stringify({ tag, seq: i + 1, pad: 'x'.repeat(64) }));
}

describe('fan-out', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--workers', '2']);
  });
  after(async () => {
    await sc?.stop();
  });

  test(`${SUBSCRIBERS} WebSocket subscribers x ${MESSAGES} messages: zero loss, zero duplicates, in order`, async (t) => {
    const ch = uniqueChannel('fanout-ws');
    const payloads = payloadsFor('ws');
    const tally = makeTally(payloads);
    const sockets = [];
    const protocolErrors = [];
    let closing = false;
    try {
      const connectStart = performance.now();
      for (let start = 0; start < SUBSCRIBERS; start += CONNECT_BATCH) {
        const batch = [];
        for (let i = start; i < Math.min(SUBSCRIBERS, start + CONNECT_BATCH); i++) {
          const ws = new WebSocket(`${sc.wsUrl}/ws?ch=${ch}`, { perMessageDeflate: false });
          sockets.push(ws);
          const sub = tally.subscriber();
          const subscribed = deferred();
          ws.on('message', (data) => {
            const m = JSON.parse(data.toString());
            if (m.type === 'subscribed') subscribed.resolve();
            else if (m.type) protocolErrors.push(m);
            else sub.accept(m.id, m.data);
          });
          ws.on('error', (err) => subscribed.reject(err));
          ws.on('close', (code) => {
            subscribed.reject(new Error(`closed with ${code} before subscribing`));
            if (sub.next <= MESSAGES && !closing) {
              tally.allComplete.reject(new Error(`a subscriber's socket closed (${code}) after ${sub.next - 1} messages`));
            }
          });
          batch.push(subscribed.promise);
        }
        await withTimeout(Promise.all(batch), 30000, `subscribers ${start}..${start + CONNECT_BATCH - 1} to subscribe`);
      }
      const connectMs = performance.now() - connectStart;

      const burstStart = performance.now();
      const answers = await publishBurst(sc, ch, payloads);
      const publishedMs = performance.now() - burstStart;
      assert.deepEqual(
        answers.map((a) => a.id),
        Array.from({ length: MESSAGES }, (_, i) => i + 1),
      );
      await withTimeout(tally.allComplete.promise, 60000, 'every subscriber to receive the whole burst').catch((err) => {
        err.message += ` ${JSON.stringify(tally.summary())}`;
        throw err;
      });
      const deliveredMs = performance.now() - burstStart;

      // Anything still in flight (a late duplicate) arrives before the answer to a ping.
      const probe = sockets[SUBSCRIBERS - 1];
      const pong = deferred();
      probe.on('message', (data) => {
        if (JSON.parse(data.toString()).type === 'pong') pong.resolve();
      });
      probe.send('{"cmd":"ping"}');
      await withTimeout(pong.promise, 5000, 'pong');
      const pongIndex = protocolErrors.findIndex((m) => m.type === 'pong');
      if (pongIndex >= 0) protocolErrors.splice(pongIndex, 1);

      const summary = tally.summary();
      const report =
        `WebSocket fan-out: ${summary.delivered} of ${summary.expected} deliveries ` +
        `(${SUBSCRIBERS} subscribers x ${MESSAGES} messages), ${summary.duplicates} duplicates, ` +
        `${summary.outOfOrder} out of order/gaps, ${summary.wrongData} wrong payloads; ` +
        `connect+subscribe ${connectMs.toFixed(0)} ms, burst published in ${publishedMs.toFixed(0)} ms, ` +
        `all delivered ${deliveredMs.toFixed(0)} ms after the burst started ` +
        `(${Math.round(summary.delivered / (deliveredMs / 1000))} deliveries/s)`;
      t.diagnostic(report);
      console.log(report);
      assert.deepEqual(protocolErrors, []);
      assert.deepEqual(summary, {
        subscribers: SUBSCRIBERS,
        messages: MESSAGES,
        expected: SUBSCRIBERS * MESSAGES,
        delivered: SUBSCRIBERS * MESSAGES,
        duplicates: 0,
        outOfOrder: 0,
        wrongData: 0,
        complete: SUBSCRIBERS,
      });
    } finally {
      closing = true;
      for (const ws of sockets) ws.terminate();
    }
    // The server lets go of every socket and subscription.
    await waitUntil(
      async () => {
        const h = await healthz(sc);
        return h.connections === 1 && h.subscriptions === 0;
      },
      { timeoutMs: 15000, what: 'the server to release 1000 WebSocket connections' },
    );
  });

  test(`${SUBSCRIBERS} SSE subscribers x ${MESSAGES} messages: zero loss, zero duplicates, in order`, async (t) => {
    const ch = uniqueChannel('fanout-sse');
    const payloads = payloadsFor('sse');
    const tally = makeTally(payloads);
    const streams = [];
    const stray = [];
    let closing = false;
    try {
      const connectStart = performance.now();
      for (let start = 0; start < SUBSCRIBERS; start += CONNECT_BATCH) {
        const batch = [];
        for (let i = start; i < Math.min(SUBSCRIBERS, start + CONNECT_BATCH); i++) {
          const sub = tally.subscriber();
          const subscribed = deferred();
          const onBlock = (block) => {
            if (block.data === undefined) {
              if (block.id !== undefined) subscribed.resolve(); // the id-only event: subscribed
              return;
            }
            const id = Number(block.id?.slice(block.id.lastIndexOf('.') + 1));
            if (!Number.isInteger(id)) stray.push(block);
            else sub.accept(id, block.data);
          };
          batch.push(
            SseStream.open(sc.port, `/sse?ch=${ch}`, { onBlock, timeoutMs: 30000 }).then((stream) => {
              streams.push(stream);
              stream.client.closed.then(() => {
                if (sub.next <= MESSAGES && !closing) {
                  tally.allComplete.reject(new Error(`an SSE stream ended after ${sub.next - 1} messages`));
                }
              });
              assert.equal(stream.response.status, 200);
              return subscribed.promise;
            }),
          );
        }
        await withTimeout(Promise.all(batch), 30000, `SSE subscribers ${start}.. to subscribe`);
      }
      const connectMs = performance.now() - connectStart;

      const burstStart = performance.now();
      await publishBurst(sc, ch, payloads);
      const publishedMs = performance.now() - burstStart;
      await withTimeout(tally.allComplete.promise, 60000, 'every SSE subscriber to receive the whole burst').catch((err) => {
        err.message += ` ${JSON.stringify(tally.summary())}`;
        throw err;
      });
      const deliveredMs = performance.now() - burstStart;

      const summary = tally.summary();
      const report =
        `SSE fan-out: ${summary.delivered} of ${summary.expected} deliveries, ${summary.duplicates} duplicates, ` +
        `${summary.outOfOrder} out of order/gaps, ${summary.wrongData} wrong payloads; ` +
        `connect ${connectMs.toFixed(0)} ms, burst published in ${publishedMs.toFixed(0)} ms, ` +
        `all delivered ${deliveredMs.toFixed(0)} ms after the burst started ` +
        `(${Math.round(summary.delivered / (deliveredMs / 1000))} deliveries/s)`;
      t.diagnostic(report);
      console.log(report);
      assert.deepEqual(stray, []);
      assert.equal(summary.delivered, SUBSCRIBERS * MESSAGES);
      assert.equal(summary.duplicates, 0);
      assert.equal(summary.outOfOrder, 0);
      assert.equal(summary.wrongData, 0);
      assert.equal(summary.complete, SUBSCRIBERS);
    } finally {
      closing = true;
      for (const s of streams) s.close();
    }
    await waitUntil(
      async () => {
        const h = await healthz(sc);
        return h.connections === 1 && h.subscriptions === 0;
      },
      { timeoutMs: 15000, what: 'the server to release 1000 SSE connections' },
    );
  });
});

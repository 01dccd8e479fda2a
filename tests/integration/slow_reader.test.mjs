// Slow readers and --max-output-bytes: a subscriber that stops reading is cut off once
// its unsent output passes the limit, other subscribers are unaffected, the server
// stays healthy, and a client resumes from its cursor afterwards.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openWs, sendJson } from './lib/clients.mjs';
import {
  headCursor,
  healthz,
  publishOk,
  RawClient,
  rawRequest,
  RawWebSocket,
  SseParser,
  SseStream,
  startSidecar,
  uniqueChannel,
} from './lib/sidecar.mjs';

const MAX_OUTPUT = 65536;
const BIG = 60000; // over the 16 KiB threshold where the server shares message buffers

function bigPayload(i) {
  const head = `#${i}:`;
  return head + String.fromCharCode(97 + (i % 26)).repeat(BIG - head.length);
}

describe('slow readers', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--workers', '2', '--max-output-bytes', String(MAX_OUTPUT)]);
  });
  after(async () => {
    await sc?.stop();
  });

  /**
   * Publishes big messages until /healthz counts one more slow reader cut (bounded:
   * loopback socket buffers hold a few MB before the server's own buffer grows).
   * Returns how many were published.
   */
  async function publishUntilCut(ch, cutBefore) {
    for (let i = 1; i <= 500; i++) {
      await publishOk(sc, ch, bigPayload(i));
      if (i % 5 === 0 && (await healthz(sc)).slow_readers_cut > cutBefore) return i;
    }
    throw new Error('no slow reader was cut after 500 messages of 60 KB (30 MB)');
  }

  test('an SSE subscriber that never reads is disconnected; a reading one gets everything', async () => {
    const ch = uniqueChannel('slow-sse');
    const cutBefore = (await healthz(sc)).slow_readers_cut;
    const healthy = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
    await healthy.messages.take();

    const slow = await RawClient.connect(sc.port);
    slow.write(`GET /sse?ch=${ch} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await slow.waitFor((buf) => (buf.includes(`id: ${ch}@.0\n\n`) ? true : undefined), 5000, 'the SSE stream head');
    slow.socket.pause(); // from now on the client reads nothing

    const published = await publishUntilCut(ch, cutBefore);
    // The healthy subscriber got every message, in order.
    const got = await healthy.messages.takeN(published, 30000);
    assert.deepEqual(
      got.map((m) => m.id),
      Array.from({ length: published }, (_, i) => i + 1),
    );
    assert.ok(got.every((m, i) => m.data === bigPayload(i + 1)));

    // The slow one: once it reads again it finds the end of its stream, short of everything.
    slow.socket.resume();
    await slow.waitClosed(15000);
    const parser = [];
    new SseParser((block) => parser.push(block)).feed(slow.buf);
    const events = parser.filter((b) => b.data !== undefined);
    assert.ok(events.length < published, `the slow reader got ${events.length} of ${published} before the cut`);
    const h = await healthz(sc);
    assert.ok(h.slow_readers_cut >= cutBefore + 1);

    // The server and the healthy subscriber carry on.
    await publishOk(sc, ch, 'after the cut');
    assert.equal((await healthy.messages.take()).data, 'after the cut');
    healthy.ws.terminate();
    console.log(`SSE slow reader cut after ${published} messages of ${BIG} bytes (${events.length} complete events reached it)`);
  });

  test('a WebSocket subscriber that never reads is disconnected too', async () => {
    const ch = uniqueChannel('slow-ws');
    const cutBefore = (await healthz(sc)).slow_readers_cut;
    const slow = await RawWebSocket.connect(sc.port, `/ws?ch=${ch}`);
    assert.equal((await slow.nextJson()).type, 'subscribed');
    slow.client.socket.pause();
    const published = await publishUntilCut(ch, cutBefore);
    slow.client.socket.resume();
    await slow.client.waitClosed(15000);
    const received = slow.frames.items.filter((f) => f.opcode === 1).length - 1;
    assert.ok(received < published, `got ${received} of ${published}`);
    const h = await healthz(sc);
    assert.ok(h.slow_readers_cut >= cutBefore + 1);
  });

  // protocol.md: a client cut off for exceeding --max-output-bytes "reconnects and resumes
  // from its cursor". Its backlog is then usually larger than --max-output-bytes.
  test('a cut-off SSE reader reconnects with its last id and gets exactly the rest', async () => {
    const ch = uniqueChannel('slow-resume');
    const cutBefore = (await healthz(sc)).slow_readers_cut;
    const slow = await RawClient.connect(sc.port);
    slow.write(`GET /sse?ch=${ch} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await slow.waitFor((buf) => (buf.includes(`id: ${ch}@.0\n\n`) ? true : undefined), 5000, 'the SSE stream head');
    slow.socket.pause();
    const published = await publishUntilCut(ch, cutBefore);
    slow.socket.resume();
    await slow.waitClosed(15000);
    const blocks = [];
    new SseParser((block) => blocks.push(block)).feed(slow.buf);
    const lastId = blocks.filter((b) => b.id !== undefined).at(-1).id;
    const seen = Number(lastId.slice(lastId.lastIndexOf('.') + 1));

    const again = await SseStream.open(sc.port, `/sse?ch=${ch}`, { headers: { 'Last-Event-ID': lastId } });
    try {
      for (let id = seen + 1; id <= published; id++) {
        const ev = await again.nextEvent(10000);
        assert.equal(ev.id.slice(ev.id.lastIndexOf('.') + 1), String(id));
        assert.equal(ev.data, bigPayload(id));
      }
    } finally {
      again.close();
    }
  });
});

// A backlog bigger than --max-output-bytes, replayed to a client that reads at full
// speed. protocol.md promises every retained message after the cursor; the output
// limit is meant for readers that do not read.
describe('resume with a backlog larger than --max-output-bytes', () => {
  let sc;
  let ch;
  let cursor;
  const COUNT = 10;
  const SIZE = 30000; // 10 x 30 KB = 300 KB of backlog, limit 64 KB
  before(async () => {
    sc = await startSidecar(['--max-output-bytes', String(MAX_OUTPUT)]);
    ch = uniqueChannel('backlog');
    cursor = await headCursor(sc, ch);
    for (let i = 1; i <= COUNT; i++) await publishOk(sc, ch, String(i % 10).repeat(SIZE));
  });
  after(async () => {
    await sc?.stop();
  });

  test('SSE replays the whole backlog', async () => {
    const s = await SseStream.open(sc.port, `/sse?cursor=${encodeURIComponent(cursor)}`);
    try {
      for (let i = 1; i <= COUNT; i++) assert.equal((await s.nextEvent(5000)).data.length, SIZE);
    } finally {
      s.close();
    }
  });

  test('WebSocket replays the whole backlog', async () => {
    const c = await openWs(`${sc.wsUrl}/ws`);
    try {
      sendJson(c, { cmd: 'sub', ch, since: '.0' });
      assert.equal((await c.messages.take()).type, 'subscribed');
      const got = await c.messages.takeN(COUNT, 5000);
      assert.deepEqual(
        got.map((m) => m.id),
        Array.from({ length: COUNT }, (_, i) => i + 1),
      );
    } finally {
      c.ws.terminate();
    }
  });

  test('poll pages through the whole backlog, each answer within half of --max-output-bytes', async () => {
    // protocol.md: one answer carries at most half of max-output-bytes of backlog (plus
    // the message that crosses it); its cursor says where the next poll goes on.
    const ids = [];
    let next = cursor;
    for (let round = 0; round < COUNT && ids.length < COUNT; round++) {
      const res = await rawRequest(sc.port, `GET /poll?wait=0&cursor=${encodeURIComponent(next)} HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal(res.status, 200);
      assert.ok(res.json.messages.length >= 1, 'every answer makes progress');
      assert.ok(res.json.messages.length * SIZE <= MAX_OUTPUT / 2 + SIZE, 'answer bounded by the output limit');
      for (const m of res.json.messages) ids.push(m.id);
      next = res.json.cursor;
    }
    assert.deepEqual(ids, Array.from({ length: COUNT }, (_, i) => i + 1));
  });
});

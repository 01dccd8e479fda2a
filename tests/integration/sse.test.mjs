// Server-Sent Events (GET /sse) driven by the `eventsource` package, plus a raw reader
// for what EventSource hides (the retry line, id-only events, heartbeats, headers).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openEventSource } from './lib/clients.mjs';
import {
  assertEnvelope,
  parseCursor,
  publishMany,
  publishOk,
  rawRequest,
  SseStream,
  startSidecar,
  uniqueChannel,
} from './lib/sidecar.mjs';

describe('SSE', () => {
  let sc;
  const open = [];
  before(async () => {
    sc = await startSidecar(['--workers', '2', '--heartbeat', '300ms', '--sse-retry', '1500ms']);
  });
  after(async () => {
    for (const c of open) c.es.close();
    await sc?.stop();
  });

  function eventSource(query, options) {
    const c = openEventSource(`${sc.url}/sse?${query}`, options);
    open.push(c);
    return c;
  }

  test('EventSource receives published messages in order, each with the cursor as its id', async () => {
    const ch = uniqueChannel('sse');
    const c = eventSource(`ch=${ch}`);
    await c.opens.take(5000);
    const sent = Array.from({ length: 20 }, (_, i) => `message ${i + 1}`);
    const answers = await publishMany(sc, ch, sent);
    const got = await c.events.takeN(20, 10000);
    assert.deepEqual(
      got.map((e) => e.data),
      sent,
    );
    for (let i = 0; i < got.length; i++) {
      assert.equal(got[i].type, 'message');
      assert.equal(got[i].lastEventId, `${ch}@${answers[i].epoch}.${answers[i].id}`);
      assert.equal(answers[i].id, i + 1);
    }
    assert.equal(c.errors.items.length, 0, JSON.stringify(c.errors.items));
    c.es.close();
  });

  test('multi-line data (LF, CRLF, CR) arrives as one event with LF-joined lines', async () => {
    const ch = uniqueChannel('sse-lines');
    const c = eventSource(`ch=${ch}`);
    await c.opens.take(5000);
    await publishOk(sc, ch, 'line1\nline2\r\nline3\rline4');
    await publishOk(sc, ch, 'trailing newline\n');
    await publishOk(sc, ch, '\n\nstarts with blank lines');
    await publishOk(sc, ch, 'unicode: héllo ✓ 😀 <b>&amp;</b> \u2028 end');
    await publishOk(sc, ch, '{"json":"is just text","n":[1,2]}');
    const got = await c.events.takeN(5, 5000);
    assert.deepEqual(
      got.map((e) => e.data),
      [
        'line1\nline2\nline3\nline4',
        'trailing newline\n',
        '\n\nstarts with blank lines',
        'unicode: héllo ✓ 😀 <b>&amp;</b> \u2028 end',
        '{"json":"is just text","n":[1,2]}',
      ],
    );
    c.es.close();
  });

  test('event names become the SSE event type; unnamed messages stay "message"', async () => {
    const ch = uniqueChannel('sse-events');
    const c = eventSource(`ch=${ch}`, { eventNames: ['typing', 'presence.join'] });
    await c.opens.take(5000);
    await publishOk(sc, ch, 'a', { event: 'typing' });
    await publishOk(sc, ch, 'b');
    await publishOk(sc, ch, 'c', { event: 'presence.join' });
    await publishOk(sc, ch, 'd', { event: 'unlistened' }); // dispatched under a name nobody listens to
    await publishOk(sc, ch, 'e');
    const got = await c.events.takeN(4, 5000);
    assert.deepEqual(
      got.map((e) => [e.type, e.data]),
      [
        ['typing', 'a'],
        ['message', 'b'],
        ['presence.join', 'c'],
        ['message', 'e'],
      ],
    );
    c.es.close();
  });

  test('format=json carries the envelope on one data line and no event line', async () => {
    const ch = uniqueChannel('sse-json');
    const c = eventSource(`ch=${ch}&format=json`, { eventNames: ['typing'] });
    await c.opens.take(5000);
    const a = await publishOk(sc, ch, 'multi\nline', { event: 'typing' });
    const b = await publishOk(sc, ch, 'plain');
    const got = await c.events.takeN(2, 5000);
    assert.deepEqual(
      got.map((e) => e.type),
      ['message', 'message'],
      'with format=json the event name is inside the envelope',
    );
    assertEnvelope(JSON.parse(got[0].data), { ch, id: a.id, epoch: a.epoch, event: 'typing', data: 'multi\nline' });
    assertEnvelope(JSON.parse(got[1].data), { ch, id: b.id, epoch: b.epoch, data: 'plain' });
    assert.equal(got[1].lastEventId, `${ch}@${b.epoch}.${b.id}`);
    c.es.close();
  });

  test('format=json escapes < > & U+2028 U+2029 in the envelope', async () => {
    const ch = uniqueChannel('sse-escape');
    const s = await SseStream.open(sc.port, `/sse?ch=${ch}&format=json`);
    try {
      await s.blocks.take(5000, (b) => b.id !== undefined); // subscribed
      const data = '</script><b>&\u2028\u2029"\\';
      await publishOk(sc, ch, data);
      const ev = await s.nextEvent(5000);
      const line = ev.data;
      for (const bad of ['<', '>', '&', '\u2028', '\u2029']) assert.ok(!line.includes(bad), `raw ${JSON.stringify(bad)} in ${line}`);
      for (const escaped of ['\\u003c', '\\u003e', '\\u0026', '\\u2028', '\\u2029']) {
        assert.ok(line.toLowerCase().includes(escaped), `${escaped} missing in ${line}`);
      }
      assert.equal(JSON.parse(line).data, data);
    } finally {
      s.close();
    }
  });

  test('two channels on one connection: both delivered, the id covers both channels', async () => {
    const a = uniqueChannel('sse-a');
    const b = uniqueChannel('sse-b');
    const c = eventSource(`ch=${a},${b}&format=json`);
    await c.opens.take(5000);
    const expected = [];
    for (let i = 1; i <= 5; i++) {
      expected.push(await publishOk(sc, a, `a${i}`));
      expected.push(await publishOk(sc, b, `b${i}`));
    }
    const got = await c.events.takeN(10, 5000);
    const envelopes = got.map((e) => JSON.parse(e.data));
    assert.deepEqual(
      envelopes.map((e) => [e.ch, e.id, e.data]),
      expected.map((p, i) => [p.ch, p.id, `${i % 2 === 0 ? 'a' : 'b'}${Math.floor(i / 2) + 1}`]),
    );
    const last = parseCursor(got[9].lastEventId);
    assert.deepEqual(Object.keys(last).sort(), [a, b].sort());
    assert.equal(last[a].id, 5);
    assert.equal(last[b].id, 5);
    // Mid-stream, the cursor already names both channels.
    const third = parseCursor(got[2].lastEventId);
    assert.deepEqual(third, { [a]: { epoch: expected[0].epoch, id: 2 }, [b]: { epoch: expected[1].epoch, id: 1 } });
    c.es.close();
  });

  test('stream head: headers, retry line, then an id-only event with the starting cursor', async () => {
    const fresh = uniqueChannel('sse-fresh');
    const s = await SseStream.open(sc.port, `/sse?ch=${fresh}`);
    try {
      const h = s.response.headers;
      assert.equal(s.response.status, 200);
      assert.equal(h['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(h['cache-control'], 'no-cache, no-store');
      assert.equal(h['x-accel-buffering'], 'no');
      assert.equal(h.connection, 'close');
      assert.equal(h['content-length'], undefined);
      const first = await s.blocks.take(5000);
      assert.deepEqual(first.fields, [['retry', '1500']]);
      const second = await s.blocks.take(5000);
      assert.deepEqual(second.fields, [['id', `${fresh}@.0`]], 'a never-published channel starts at .0');
    } finally {
      s.close();
    }

    const used = uniqueChannel('sse-used');
    const p = await publishOk(sc, used, 'before');
    const t = await SseStream.open(sc.port, `/sse?ch=${used}`);
    try {
      await t.blocks.take(5000); // retry
      const idOnly = await t.blocks.take(5000);
      assert.deepEqual(idOnly.fields, [['id', `${used}@${p.epoch}.${p.id}`]], 'starts at the head');
      const q = await publishOk(sc, used, 'after');
      const ev = await t.nextEvent(5000);
      assert.deepEqual(ev.fields, [
        ['id', `${used}@${q.epoch}.${q.id}`],
        ['data', 'after'],
      ]);
    } finally {
      t.close();
    }
  });

  test('heartbeat comments arrive every --heartbeat on an idle stream', async () => {
    const ch = uniqueChannel('sse-hb');
    const s = await SseStream.open(sc.port, `/sse?ch=${ch}`);
    try {
      const started = Date.now();
      const beats = [];
      while (beats.length < 2) {
        const block = await s.blocks.take(3000);
        if (block.fields.length === 0) beats.push(block);
      }
      assert.deepEqual(beats[0].comments, ['']);
      assert.ok(Date.now() - started < 3000);
    } finally {
      s.close();
    }
  });

  test('errors before the stream starts are JSON answers, not streams', async () => {
    const noChannel = await rawRequest(sc.port, 'GET /sse HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(noChannel.status, 400);
    assert.equal(noChannel.json.status, 400);
    const badFormat = await rawRequest(sc.port, 'GET /sse?ch=a&format=xml HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(badFormat.status, 400);
    assert.match(badFormat.headers['content-type'], /^application\/json/);
    const badName = await rawRequest(sc.port, 'GET /sse?ch=a%20b HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(badName.status, 400);
  });
});

describe('SSE heartbeats are spread over the interval', () => {
  let sc;
  before(async () => {
    // One worker, so every stream shares one heartbeat schedule.
    sc = await startSidecar(['--workers', '1', '--heartbeat', '400ms']);
  });
  after(async () => {
    await sc?.stop();
  });

  test('each stream gets one heartbeat per interval, not all streams in the same turn', async () => {
    // Writing every stream's heartbeat in one loop turn stalls deliveries behind them
    // (a second at 100K streams); the worker writes a slice of them every 100 ms.
    const streams = [];
    try {
      for (let i = 0; i < 24; i++) streams.push(await SseStream.open(sc.port, `/sse?ch=${uniqueChannel('hb')}`));
      const windowMs = 2000;
      const started = Date.now();
      const beats = await Promise.all(
        streams.map(async (s) => {
          const times = [];
          for (;;) {
            const left = windowMs - (Date.now() - started);
            if (left <= 0) return times;
            const block = await s.blocks.take(left).catch(() => null);
            if (block === null) return times;
            if (block.fields.length === 0) times.push(Date.now() - started);
          }
        }),
      );
      for (const times of beats) {
        // 2 s at one heartbeat per 400 ms: 5, give or take one at the edges.
        assert.ok(times.length >= 4 && times.length <= 6, `heartbeats in 2 s: ${times.length}`);
      }
      const firsts = beats.map((times) => times[0]);
      const spread = Math.max(...firsts) - Math.min(...firsts);
      assert.ok(spread >= 150, `first heartbeats within ${spread} ms of each other: not spread`);
    } finally {
      for (const s of streams) s.close();
    }
  });
});

// Resume: a client that goes away while messages are published comes back with its
// cursor and gets exactly the missed messages, in order, once. Two workers, so a
// reconnect may land on the other worker (SO_REUSEPORT spreads connections by port).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { closeWs, openEventSource, openWs, sendJson } from './lib/clients.mjs';
import {
  assertEnvelope,
  headCursor,
  parseCursor,
  poll,
  publishMany,
  publishOk,
  RawClient,
  SseStream,
  startSidecar,
  TcpProxy,
  uniqueChannel,
} from './lib/sidecar.mjs';

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const names = (ids, prefix = 'm') => ids.map((i) => `${prefix}${i}`);

describe('resume', () => {
  let sc;
  const cleanups = [];
  before(async () => {
    sc = await startSidecar(['--workers', '2', '--sse-retry', '100ms']);
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
    await sc?.stop();
  });

  test('SSE: the eventsource package reconnects by itself and resumes via Last-Event-ID', async () => {
    const ch = uniqueChannel('resume-es');
    const proxy = await TcpProxy.start(sc.port);
    cleanups.push(() => proxy.close());
    const c = openEventSource(`http://127.0.0.1:${proxy.port}/sse?ch=${ch}`);
    cleanups.push(() => c.es.close());
    await c.opens.take(5000);
    let next = 1;
    await publishMany(sc, ch, names(range(next, next + 4)));
    assert.deepEqual(
      (await c.events.takeN(5, 5000)).map((e) => e.data),
      names(range(1, 5)),
    );
    next = 6;
    const cycles = 6;
    for (let cycle = 0; cycle < cycles; cycle++) {
      // Cut the connection and hold the reconnect until the missed messages are published.
      proxy.hold();
      const acceptedBefore = proxy.accepted;
      proxy.dropAll();
      await c.errors.take(5000); // EventSource noticed and scheduled a reconnect
      await proxy.acceptedQueue.take(5000, (n) => n > acceptedBefore); // it is knocking
      const missed = range(next, next + 9);
      await publishMany(sc, ch, names(missed));
      proxy.release();
      await c.opens.take(5000);
      const got = await c.events.takeN(missed.length, 5000);
      assert.deepEqual(
        got.map((e) => e.data),
        names(missed),
        `cycle ${cycle}: exactly the missed messages`,
      );
      // Live delivery continues; a duplicate or a late replay would show up before it.
      const live = next + missed.length;
      const p = await publishOk(sc, ch, `m${live}`);
      const ev = await c.events.take(5000);
      assert.equal(ev.data, `m${live}`, `cycle ${cycle}: live message right after the replay`);
      assert.equal(ev.lastEventId, `${ch}@${p.epoch}.${live}`);
      next = live + 1;
    }
    assert.equal(c.events.pending, 0);
    c.es.close();
  });

  test('SSE: Last-Event-ID wins over the (stale) cursor parameter of the original URL', async () => {
    const ch = uniqueChannel('resume-es-url');
    const answers = await publishMany(sc, ch, names(range(1, 3)));
    const epoch = answers[0].epoch;
    const proxy = await TcpProxy.start(sc.port);
    cleanups.push(() => proxy.close());
    // The URL resumes after m1; EventSource keeps re-sending this URL on reconnects.
    const c = openEventSource(`http://127.0.0.1:${proxy.port}/sse?ch=${ch}&cursor=${encodeURIComponent(`${ch}@${epoch}.1`)}`);
    cleanups.push(() => c.es.close());
    await c.opens.take(5000);
    assert.deepEqual(
      (await c.events.takeN(2, 5000)).map((e) => e.data),
      ['m2', 'm3'],
    );
    proxy.hold();
    proxy.dropAll();
    await c.errors.take(5000);
    await publishMany(sc, ch, names(range(4, 6)));
    proxy.release();
    await c.opens.take(5000);
    assert.deepEqual(
      (await c.events.takeN(3, 5000)).map((e) => e.data),
      ['m4', 'm5', 'm6'],
    );
    await publishOk(sc, ch, 'm7');
    assert.equal((await c.events.take(5000)).data, 'm7', 'no replay of m2, m3 from the URL cursor');
    c.es.close();

    // The same over a raw request: header and parameter both present.
    const s = await SseStream.open(sc.port, `/sse?ch=${ch}&cursor=${encodeURIComponent(`${ch}@${epoch}.1`)}`, {
      headers: { 'Last-Event-ID': `${ch}@${epoch}.5` },
    });
    try {
      const ev = await s.nextEvent(5000);
      assert.equal(ev.data, 'm6');
      assert.equal(ev.id, `${ch}@${epoch}.6`);
    } finally {
      s.close();
    }
  });

  test('SSE: an explicit cursor parameter (without ch) resumes every channel of it', async () => {
    const a = uniqueChannel('resume-cur-a');
    const b = uniqueChannel('resume-cur-b');
    const first = openEventSource(`${sc.url}/sse?ch=${a},${b}`);
    cleanups.push(() => first.es.close());
    await first.opens.take(5000);
    await publishOk(sc, a, 'a1');
    await publishOk(sc, b, 'b1');
    await publishOk(sc, a, 'a2');
    const seen = await first.events.takeN(3, 5000);
    const cursor = seen[2].lastEventId;
    first.es.close();
    assert.deepEqual(Object.keys(parseCursor(cursor)).sort(), [a, b].sort());

    await publishOk(sc, b, 'b2');
    await publishOk(sc, a, 'a3');
    await publishOk(sc, b, 'b3');
    const second = openEventSource(`${sc.url}/sse?cursor=${encodeURIComponent(cursor)}`);
    cleanups.push(() => second.es.close());
    const missed = await second.events.takeN(3, 5000);
    const of = (prefix) => missed.map((e) => e.data).filter((d) => d.startsWith(prefix));
    assert.deepEqual(of('a'), ['a3']);
    assert.deepEqual(of('b'), ['b2', 'b3']);
    const last = parseCursor(missed[2].lastEventId);
    assert.equal(last[a].id, 3);
    assert.equal(last[b].id, 3);
    await publishOk(sc, a, 'a4');
    assert.equal((await second.events.take(5000)).data, 'a4');
    second.es.close();
  });

  // Browsers take the id of an id-only event as lastEventId (WHATWG "dispatch the event",
  // step 1), so a stream that received no message yet still resumes from its subscription
  // point. The `eventsource` package (its parser emits only events with data) drops
  // id-only events, so this is checked with a raw stream that reconnects the way the
  // specification says.
  test('SSE: reconnecting before any message resumes from the id-only event', async () => {
    const ch = uniqueChannel('resume-idonly');
    const old = await publishOk(sc, ch, 'old');
    const s = await SseStream.open(sc.port, `/sse?ch=${ch}`);
    const idOnly = await s.blocks.take(5000, (b) => b.id !== undefined);
    s.close();
    assert.equal(idOnly.data, undefined);
    assert.equal(idOnly.id, `${ch}@${old.epoch}.1`);
    await publishMany(sc, ch, ['while-away-1', 'while-away-2']);
    const again = await SseStream.open(sc.port, `/sse?ch=${ch}`, { headers: { 'Last-Event-ID': idOnly.id } });
    try {
      const got = [await again.nextEvent(5000), await again.nextEvent(5000)];
      assert.deepEqual(
        got.map((e) => [e.data, e.id]),
        [
          ['while-away-1', `${ch}@${old.epoch}.2`],
          ['while-away-2', `${ch}@${old.epoch}.3`],
        ],
      );
    } finally {
      again.close();
    }
  });

  test('WebSocket: sub with since resumes after that position; a cursor in the URL too', async () => {
    const ch = uniqueChannel('resume-ws');
    const first = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
    cleanups.push(() => first.ws.terminate());
    await first.messages.take();
    const answers = await publishMany(sc, ch, names(range(1, 5)));
    const epoch = answers[0].epoch;
    const got = await first.messages.takeN(5);
    await closeWs(first);
    const lastSeen = got.at(-1);
    assert.equal(lastSeen.id, 5);

    await publishMany(sc, ch, names(range(6, 12)));
    const second = await openWs(`${sc.wsUrl}/ws`);
    cleanups.push(() => second.ws.terminate());
    sendJson(second, { cmd: 'sub', ch, since: `${lastSeen.epoch}.${lastSeen.id}` });
    assert.deepEqual(await second.messages.take(), { type: 'subscribed', ch, epoch, id: 5 });
    const replay = await second.messages.takeN(7);
    replay.forEach((m, i) => assertEnvelope(m, { ch, id: 6 + i, epoch, data: `m${6 + i}` }));
    await publishOk(sc, ch, 'm13');
    assert.equal((await second.messages.take()).id, 13, 'live after replay, no duplicates');
    await closeWs(second);

    // since ".0": everything retained from the channel's first message.
    const all = await openWs(`${sc.wsUrl}/ws`);
    cleanups.push(() => all.ws.terminate());
    sendJson(all, { cmd: 'sub', ch: [ch], since: '.0' });
    const start = await all.messages.take();
    assert.equal(start.type, 'subscribed');
    assert.equal(start.id, 0);
    assert.ok(start.epoch === '' || start.epoch === epoch, JSON.stringify(start));
    assert.deepEqual(
      (await all.messages.takeN(13)).map((m) => m.id),
      range(1, 13),
    );
    await closeWs(all);

    // cursor in the query string (without ch): its channels, from its positions.
    const other = uniqueChannel('resume-ws-other');
    const o = await publishMany(sc, other, ['o1', 'o2', 'o3']);
    const cursor = `${ch}@${epoch}.11,${other}@${o[0].epoch}.1`;
    const third = await openWs(`${sc.wsUrl}/ws?cursor=${encodeURIComponent(cursor)}`);
    cleanups.push(() => third.ws.terminate());
    const msgs = await third.messages.takeN(2 + 2 + 2);
    const subscribed = msgs.filter((m) => m.type === 'subscribed');
    assert.deepEqual(
      subscribed.sort((x, y) => x.ch.localeCompare(y.ch)),
      [
        { type: 'subscribed', ch, epoch, id: 11 },
        { type: 'subscribed', ch: other, epoch: o[0].epoch, id: 1 },
      ].sort((x, y) => x.ch.localeCompare(y.ch)),
    );
    assert.deepEqual(
      msgs.filter((m) => m.ch === ch && !m.type).map((m) => m.data),
      ['m12', 'm13'],
    );
    assert.deepEqual(
      msgs.filter((m) => m.ch === other && !m.type).map((m) => m.data),
      ['o2', 'o3'],
    );
    // Each channel's subscribed notice comes before its replayed messages.
    for (const name of [ch, other]) {
      const idx = msgs.findIndex((m) => m.ch === name);
      assert.equal(msgs[idx].type, 'subscribed');
    }
    await closeWs(third);
  });

  test('WebSocket: many reconnects (across workers) while publishing: one gapless sequence', async () => {
    const ch = uniqueChannel('resume-ws-many');
    const total = 200;
    const publisher = (async () => {
      for (let i = 1; i <= total; i++) await publishOk(sc, ch, `n${i}`);
    })();
    const received = [];
    let since = '.0';
    let connections = 0;
    while (received.length < total && connections < 100) {
      connections += 1;
      const c = await openWs(`${sc.wsUrl}/ws`);
      sendJson(c, { cmd: 'sub', ch, since });
      const sub = await c.messages.take(5000);
      assert.equal(sub.type, 'subscribed');
      // Take a few messages (or what is left), then drop the socket without a close handshake.
      const want = Math.min(total - received.length, 1 + (connections % 7) * 5);
      const got = await c.messages.takeN(want, 10000);
      for (const m of got) {
        assert.equal(m.ch, ch);
        received.push(m.id);
        since = `${m.epoch}.${m.id}`;
      }
      c.ws.terminate();
    }
    await publisher;
    assert.deepEqual(received, range(1, total), `over ${connections} connections`);
  });

  test('poll: each request on a new connection resumes from the cursor', async () => {
    const ch = uniqueChannel('resume-poll');
    let cursor = await headCursor(sc, ch);
    const received = [];
    for (let round = 0; round < 12; round++) {
      await publishMany(sc, ch, names(range(received.length + 1, received.length + 1 + (round % 4))));
      const client = await RawClient.connect(sc.port);
      client.write(`GET /poll?cursor=${encodeURIComponent(cursor)}&wait=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const res = await client.readResponse();
      client.destroy();
      assert.equal(res.status, 200);
      for (const m of res.json.messages) received.push(Number(m.data.slice(1)));
      cursor = res.json.cursor;
    }
    assert.deepEqual(received, range(1, received.length));
    assert.equal(parseCursor(cursor)[ch].id, received.length);
  });
});

describe('resume after history expired or the epoch changed', () => {
  let sc;
  let ch;
  let epoch;
  before(async () => {
    sc = await startSidecar(['--workers', '2', '--history-size', '5']);
    ch = uniqueChannel('expired');
    const answers = await publishMany(sc, ch, names(range(1, 20)));
    epoch = answers[0].epoch;
  });
  after(async () => {
    await sc?.stop();
  });

  const reset = () => ({ type: 'reset', ch, reason: 'history-expired', epoch, id: 15 });

  test('poll: a reset notice, then the 5 retained messages', async () => {
    const res = await poll(sc, { cursor: `${ch}@${epoch}.2` });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.messages[0], reset());
    assert.deepEqual(
      res.json.messages.slice(1).map((m) => [m.id, m.data]),
      range(16, 20).map((i) => [i, `m${i}`]),
    );
    assert.equal(res.json.cursor, `${ch}@${epoch}.20`);
  });

  test('no reset when the cursor is exactly before the oldest retained message', async () => {
    const res = await poll(sc, { cursor: `${ch}@${epoch}.15` });
    assert.deepEqual(
      res.json.messages.map((m) => m.id),
      range(16, 20),
    );
    const older = await poll(sc, { cursor: `${ch}@${epoch}.14` });
    assert.deepEqual(older.json.messages[0], reset());
    assert.equal(older.json.messages.length, 6);
  });

  test('SSE (eventsource): comet-reset event, then the retained messages', async () => {
    const c = openEventSource(`${sc.url}/sse?ch=${ch}&cursor=${encodeURIComponent(`${ch}@${epoch}.1`)}`, {
      eventNames: ['comet-reset'],
    });
    try {
      const events = await c.events.takeN(6, 5000);
      assert.equal(events[0].type, 'comet-reset');
      assert.deepEqual(JSON.parse(events[0].data), reset());
      assert.deepEqual(
        events.slice(1).map((e) => [e.type, e.data, e.lastEventId]),
        range(16, 20).map((i) => ['message', `m${i}`, `${ch}@${epoch}.${i}`]),
      );
    } finally {
      c.es.close();
    }
    // On the wire the reset carries no id: field.
    const s = await SseStream.open(sc.port, `/sse?ch=${ch}&cursor=${encodeURIComponent(`${ch}@${epoch}.1`)}`);
    try {
      const block = await s.blocks.take(5000, (b) => b.event === 'comet-reset');
      assert.equal(block.id, undefined);
    } finally {
      s.close();
    }
  });

  test('WebSocket: reset notice, subscribed at the reset position, then the retained messages', async () => {
    const c = await openWs(`${sc.wsUrl}/ws`);
    try {
      sendJson(c, { cmd: 'sub', ch, since: `${epoch}.3` });
      const msgs = await c.messages.takeN(7);
      assert.deepEqual(msgs[0], reset());
      assert.deepEqual(msgs[1], { type: 'subscribed', ch, epoch, id: 15 });
      msgs.slice(2).forEach((m, i) => assertEnvelope(m, { ch, id: 16 + i, epoch, data: `m${16 + i}` }));
    } finally {
      await closeWs(c);
    }
  });

  test('a cursor from a previous server run gets an epoch-changed reset', async () => {
    const first = await startSidecar([]);
    let oldEpoch;
    try {
      const answers = await publishMany(first, ch, ['x1', 'x2', 'x3']);
      oldEpoch = answers[0].epoch;
    } finally {
      await first.stop();
    }
    const second = await startSidecar(['--workers', '2']);
    try {
      const answers = await publishMany(second, ch, ['y1', 'y2']);
      const newEpoch = answers[0].epoch;
      assert.notEqual(newEpoch, oldEpoch, 'a restarted embedded bus starts a new epoch');
      const res = await poll(second, { cursor: `${ch}@${oldEpoch}.3` });
      assert.equal(res.status, 200);
      assert.equal(res.json.messages[0].type, 'reset');
      assert.deepEqual(res.json.messages[0], { type: 'reset', ch, reason: 'epoch-changed', epoch: newEpoch, id: 0 });
      assert.deepEqual(
        res.json.messages.slice(1).map((m) => m.data),
        ['y1', 'y2'],
      );
      assert.equal(res.json.cursor, `${ch}@${newEpoch}.2`);
    } finally {
      await second.stop();
    }
  });
});

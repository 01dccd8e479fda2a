// POST /pub/<channel>: answers, validation, size limit, Expect: 100-continue, chunked
// bodies, and the publish key.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openWs } from './lib/clients.mjs';
import {
  assertEnvelope,
  headCursor,
  poll,
  publish,
  publishOk,
  RawClient,
  rawRequest,
  SseStream,
  startSidecar,
  sendAndHalfClose,
  uniqueChannel,
} from './lib/sidecar.mjs';

/** Publishes with a hand-written request; returns the response. */
function rawPublish(port, channel, bodyBytes, extraHeaders = '') {
  const body = Buffer.from(bodyBytes);
  const head = `POST /pub/${channel} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n${extraHeaders}\r\n`;
  return rawRequest(port, Buffer.concat([Buffer.from(head), body]));
}

/** The data of every message retained after `cursor` in `channel`. */
async function retainedAfter(sc, channel, cursor) {
  const res = await poll(sc, { ch: channel, cursor, wait: '0' });
  assert.equal(res.status, 200, res.text);
  return res.json.messages;
}

describe('publish', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--workers', '2']);
  });
  after(async () => {
    await sc?.stop();
  });

  test('a client that half-closes after pipelining publishes gets every answer', async () => {
    // HTTP lets a client shut down its sending side once its requests are out.
    const ch = uniqueChannel('halfclose');
    let bytes = '';
    for (let i = 1; i <= 5; i++) bytes += `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nm${i}`;
    const answer = await sendAndHalfClose(sc.publishPort, bytes);
    assert.deepEqual([...answer.matchAll(/"id":(\d+)/g)].map((m) => Number(m[1])), [1, 2, 3, 4, 5]);
  });

  test('answers 200 {ch, id, epoch}; ids count up per channel, the epoch stays', async () => {
    const a = uniqueChannel('pub-a');
    const b = uniqueChannel('pub-b');
    const r1 = await publish(sc, a, 'x');
    assert.equal(r1.status, 200);
    assert.match(r1.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(Object.keys(r1.json).sort(), ['ch', 'epoch', 'id']);
    assert.equal(r1.json.ch, a);
    assert.equal(r1.json.id, 1);
    assert.match(r1.json.epoch, /^[0-9A-Za-z]{1,32}$/);
    const r2 = await publishOk(sc, a, 'y');
    assert.deepEqual(r2, { ch: a, id: 2, epoch: r1.json.epoch });
    const r3 = await publishOk(sc, b, 'z');
    assert.equal(r3.id, 1, 'ids are per channel');
  });

  test('PUT is a synonym; other methods get 405 with Allow', async () => {
    const ch = uniqueChannel('pub-put');
    const put = await publish(sc, ch, 'put body', { method: 'PUT' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.id, 1);
    const get = await fetch(`${sc.url}/pub/${ch}`);
    assert.equal(get.status, 405);
    assert.match(get.headers.get('allow'), /POST/);
    const del = await fetch(`${sc.url}/pub/${ch}`, { method: 'DELETE' });
    assert.equal(del.status, 405);
    assert.match(del.headers.get('allow'), /POST/);
  });

  test('channel and event names are validated', async () => {
    const longest = 'c'.repeat(128);
    assert.equal((await publish(sc, longest, 'ok')).status, 200);
    assert.equal((await publish(sc, 'A-Za-z0-9_.:/=+-', 'ok')).status, 200);
    for (const bad of ['c'.repeat(129), 'a,b', 'a@b', 'a%20b', 'a%C3%A9', '']) {
      const res = await publish(sc, bad, 'x');
      assert.equal(res.status, 400, `channel ${JSON.stringify(bad)}: ${res.text}`);
      assert.equal(res.json.status, 400);
      assert.equal(typeof res.json.error, 'string');
    }
    const ch = uniqueChannel('pub-ev');
    assert.equal((await publish(sc, ch, 'x', { event: 'a'.repeat(64) })).status, 200);
    for (const bad of ['a'.repeat(65), 'has space', 'a/b', 'a,b', '']) {
      const res = await publish(sc, ch, 'x', { event: bad });
      assert.equal(res.status, 400, `event ${JSON.stringify(bad)}: ${res.text}`);
    }
  });

  test('the body must be valid UTF-8', async () => {
    const ch = uniqueChannel('pub-utf8');
    const invalid = {
      'lone continuation byte': [0x61, 0x80],
      'invalid byte 0xff': [0xff, 0xfe],
      'overlong NUL': [0xc0, 0x80],
      'UTF-16 surrogate': [0xed, 0xa0, 0x80],
      'truncated sequence': [0x61, 0xe2, 0x82],
      'above U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
    };
    for (const [what, bytes] of Object.entries(invalid)) {
      const res = await publish(sc, ch, Buffer.from(bytes));
      assert.equal(res.status, 400, `${what} accepted: ${res.text}`);
    }
    const cursor = await headCursor(sc, ch);
    assert.equal(cursor, `${ch}@.0`, 'nothing invalid was published');
    const valid = 'ascii, é, ✓, 😀, \u0000 NUL is valid UTF-8';
    await publishOk(sc, ch, valid);
    const [m] = await retainedAfter(sc, ch, cursor);
    assert.equal(m.data, valid);
  });

  test('a body over --max-message-bytes (64 KiB) gets 413; exactly the limit is accepted', async () => {
    const ch = uniqueChannel('pub-size');
    const limit = 64 * 1024;
    const atLimit = await rawPublish(sc.publishPort, ch, Buffer.alloc(limit, 'a'));
    assert.equal(atLimit.status, 200, atLimit.body);
    // Announcing one byte more is enough to be refused; the body need not be sent.
    const over = await rawRequest(sc.publishPort, `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nContent-Length: ${limit + 1}\r\n\r\n`);
    assert.equal(over.status, 413);
    assert.equal(over.json.status, 413);
    const viaFetch = await publish(sc, ch, 'b'.repeat(limit + 1)).catch((err) => ({ status: `fetch failed: ${err.message}` }));
    assert.equal(viaFetch.status, 413);
  });

  test('large messages reach WebSocket and SSE subscribers intact', async () => {
    const ch = uniqueChannel('pub-big');
    const ws = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
    const sse = await SseStream.open(sc.port, `/sse?ch=${ch}`);
    try {
      await ws.messages.take();
      await sse.blocks.take(5000, (b) => b.id !== undefined);
      const sizes = [100, 16 * 1024 - 1, 16 * 1024, 40000, 64 * 1024];
      const bodies = sizes.map((n, i) => {
        let s = `${i}:`;
        while (s.length < n) s += String.fromCharCode(97 + (s.length % 26));
        return s.slice(0, n);
      });
      for (const body of bodies) await publishOk(sc, ch, body);
      const got = await ws.messages.takeN(bodies.length, 10000);
      assert.deepEqual(
        got.map((m) => m.data),
        bodies,
      );
      for (const body of bodies) assert.equal((await sse.nextEvent(10000)).data, body);
    } finally {
      ws.ws.terminate();
      sse.close();
    }
  });

  test('Expect: 100-continue gets an interim 100 before the body is sent', async () => {
    const ch = uniqueChannel('pub-expect');
    const cursor = await headCursor(sc, ch);
    const client = await RawClient.connect(sc.publishPort);
    try {
      client.write(`POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n`);
      const interim = await client.readResponse();
      assert.equal(interim.status, 100);
      client.write('hello world');
      const final = await client.readResponse();
      assert.equal(final.status, 200, final.body);
      assert.equal(final.json.ch, ch);
    } finally {
      client.destroy();
    }
    const [m] = await retainedAfter(sc, ch, cursor);
    assert.equal(m.data, 'hello world');

    const unknown = await rawRequest(
      sc.publishPort,
      `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: something-else\r\n\r\nx`,
    );
    assert.equal(unknown.status, 417);
  });

  test('chunked bodies are reassembled (hand-written and from fetch streams)', async () => {
    const ch = uniqueChannel('pub-chunked');
    const cursor = await headCursor(sc, ch);
    const chunked =
      `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n` +
      '5\r\nhello\r\n1;ext=value\r\n \r\nA\r\nchunked wo\r\n3\r\nrld\r\n0\r\n\r\n';
    const res = await rawRequest(sc.publishPort, chunked);
    assert.equal(res.status, 200, res.body);

    // A request split into many tiny writes arrives the same.
    const client = await RawClient.connect(sc.publishPort);
    try {
      const bytes = Buffer.from(
        `POST /pub/${ch}?event=split HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsp\u00e9\r\n2\r\nit\r\n0\r\n\r\n`,
      );
      for (let i = 0; i < bytes.length; i += 3) {
        client.write(bytes.subarray(i, i + 3));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const split = await client.readResponse();
      assert.equal(split.status, 200, split.body);
    } finally {
      client.destroy();
    }

    // fetch with a stream body sends Transfer-Encoding: chunked.
    const encoder = new TextEncoder();
    const stream = new ReadableStream({
      start(controller) {
        for (const part of ['from ', 'a ', 'stream']) controller.enqueue(encoder.encode(part));
        controller.close();
      },
    });
    const streamed = await fetch(`${sc.publishUrl}/pub/${ch}`, { method: 'POST', body: stream, duplex: 'half' });
    assert.equal(streamed.status, 200, await streamed.text());

    const messages = await retainedAfter(sc, ch, cursor);
    assert.deepEqual(
      messages.map((m) => [m.data, m.event]),
      [
        ['hello chunked world', undefined],
        ['spéit', 'split'],
        ['from a stream', undefined],
      ],
    );
  });

  test('a chunked body over the limit gets 413', async () => {
    const ch = uniqueChannel('pub-chunked-big');
    const size = (64 * 1024 + 1).toString(16);
    const res = await rawRequest(
      sc.publishPort,
      `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\n`,
    );
    assert.equal(res.status, 413);
    // Many small chunks adding up to more than the limit.
    const client = await RawClient.connect(sc.publishPort);
    try {
      client.write(`POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const piece = `400\r\n${'z'.repeat(1024)}\r\n`;
      for (let i = 0; i < 64; i++) client.write(piece);
      client.write('1\r\nz\r\n'); // 64 KiB + 1
      const over = await client.readResponse();
      assert.equal(over.status, 413);
    } finally {
      client.destroy();
    }
    assert.equal(await headCursor(sc, ch), `${ch}@.0`, 'nothing was published');
  });

  test('what a subscriber gets matches what publish answered', async () => {
    const ch = uniqueChannel('pub-match');
    const ws = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
    try {
      await ws.messages.take();
      const a = await publishOk(sc, ch, 'one', { event: 'greeting' });
      const b = await publishOk(sc, ch, 'two');
      assertEnvelope(await ws.messages.take(), { ch, id: a.id, epoch: a.epoch, event: 'greeting', data: 'one' });
      assertEnvelope(await ws.messages.take(), { ch, id: b.id, epoch: b.epoch, data: 'two' });
    } finally {
      ws.ws.terminate();
    }
  });

  test('publishers on both workers at once: every subscriber sees every id once, in order', async () => {
    // A worker delivers its own publishes to its own subscribers at once and the other
    // worker's through its inbox; interleaved, the order must still be the bus's.
    const ch = uniqueChannel('pub-race');
    const subscribers = [];
    const PUBLISHERS = 8;
    const EACH = 60;
    try {
      for (let i = 0; i < 12; i++) {
        const ws = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
        await ws.messages.take();  // subscribed
        subscribers.push(ws);
      }
      const publishers = [];
      for (let p = 0; p < PUBLISHERS; p++) publishers.push(await RawClient.connect(sc.publishPort));
      await Promise.all(
        publishers.map(async (client, p) => {
          for (let k = 0; k < EACH; k++) {
            const body = `${p}.${k}`;
            client.write(`POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
            assert.equal((await client.readResponse()).status, 200);
          }
          client.destroy();
        }),
      );
      const total = PUBLISHERS * EACH;
      for (const ws of subscribers) {
        const got = await ws.messages.takeN(total, 10000);
        assert.deepEqual(
          got.map((m) => m.id),
          Array.from({ length: total }, (_, i) => i + 1),
        );
        // Each publisher's own messages keep their order too.
        for (let p = 0; p < PUBLISHERS; p++) {
          const mine = got.map((m) => m.data).filter((d) => d.startsWith(`${p}.`));
          assert.deepEqual(mine, Array.from({ length: EACH }, (_, k) => `${p}.${k}`));
        }
      }
    } finally {
      for (const ws of subscribers) ws.ws.terminate();
    }
  });
});

describe('publish policy without a key', () => {
  let sc;
  before(async () => {
    sc = await startSidecar();
  });
  after(() => sc?.stop());

  test('the public listener refuses a keyless publish even from loopback (what every proxy is)', async () => {
    const ch = uniqueChannel('public');
    const res = await publish(sc, ch, 'forged', { publicListener: true });
    assert.equal(res.status, 403);
    assert.match(res.json.error, /--publish-listen/);
    assert.equal(await headCursor(sc, ch), `${ch}@.0`, 'nothing was published');
  });

  test('the publish listener refuses requests that a proxy relayed or a browser sent', async () => {
    const ch = uniqueChannel('relayed');
    for (const headers of [
      { 'X-Forwarded-For': '203.0.113.9' },
      { Forwarded: 'for=203.0.113.9' },
      { 'X-Real-IP': '203.0.113.9' },
      { Origin: 'https://evil.example' },
    ]) {
      const res = await publish(sc, ch, 'forged', { headers });
      assert.equal(res.status, 403, `${JSON.stringify(headers)} -> ${res.status} ${res.text}`);
    }
    assert.equal((await publish(sc, ch, 'fine')).status, 200);
  });

  test('the publish listener serves nothing but /pub, /healthz and /metrics', async () => {
    const sse = await fetch(`${sc.publishUrl}/sse?ch=a`);
    assert.equal(sse.status, 404);
    await sse.text();
    const health = await fetch(`${sc.publishUrl}/healthz`);
    assert.equal(health.status, 200);
    await health.text();
  });
});

describe('publish key', () => {
  let sc;
  const key = 's3cret-Key_42';
  before(async () => {
    sc = await startSidecar(['--publish-key', key]);
  });
  after(async () => {
    await sc?.stop();
  });

  test('401 without a key or with a wrong one, in every form', async () => {
    const ch = uniqueChannel('key');
    const attempts = [
      {},
      { headers: { 'X-Comet-Key': 'wrong' } },
      { headers: { 'X-Comet-Key': `${key}x` } },
      { headers: { 'X-Comet-Key': key.slice(0, -1) } },
      { headers: { Authorization: 'Bearer wrong' } },
      { headers: { Authorization: `Basic ${key}` } },
      { headers: { Authorization: key } },
      { query: { key: 'wrong' } },
    ];
    for (const options of attempts) {
      const res = await publish(sc, ch, 'x', options);
      assert.equal(res.status, 401, `${JSON.stringify(options)} -> ${res.status} ${res.text}`);
      assert.equal(res.json.status, 401);
    }
    assert.equal(await headCursor(sc, ch), `${ch}@.0`, 'nothing was published');
  });

  test('the key works on the public listener too, and is required on the publish listener', async () => {
    const ch = uniqueChannel('key-public');
    const pub = await publish(sc, ch, 'x', { headers: { 'X-Comet-Key': key }, publicListener: true });
    assert.equal(pub.status, 200, pub.text);
    assert.equal((await publish(sc, ch, 'x')).status, 401);
  });

  test('200 with X-Comet-Key, a Bearer token or ?key=', async () => {
    const ch = uniqueChannel('key-ok');
    const forms = [
      { headers: { 'X-Comet-Key': key } },
      { headers: { Authorization: `Bearer ${key}` } },
      { query: { key } },
    ];
    for (const [i, options] of forms.entries()) {
      const res = await publish(sc, ch, `m${i}`, options);
      assert.equal(res.status, 200, `${JSON.stringify(options)} -> ${res.status} ${res.text}`);
      assert.equal(res.json.id, i + 1);
    }
  });
});

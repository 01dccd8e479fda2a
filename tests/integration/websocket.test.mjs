// WebSocket pub/sub (GET /ws) driven by the `ws` package: query-string channels, sub /
// unsub / ping commands, envelopes, heartbeats, close handshakes and handshake errors.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { closeWs, openWs, sendJson, WebSocket } from './lib/clients.mjs';
import {
  assertEnvelope,
  publishMany,
  publishOk,
  RawWebSocket,
  rawRequest,
  startSidecar,
  uniqueChannel,
} from './lib/sidecar.mjs';

describe('WebSocket', () => {
  let sc;
  const clients = [];
  before(async () => {
    sc = await startSidecar(['--workers', '2', '--max-channels', '4']);
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await sc?.stop();
  });

  async function ws(query = '') {
    const c = await openWs(`${sc.wsUrl}/ws${query}`);
    clients.push(c);
    return c;
  }

  test('channels in the query string: subscribed notice, then envelopes in order', async () => {
    const ch = uniqueChannel('ws-q');
    const c = await ws(`?ch=${ch}`);
    assert.deepEqual(await c.messages.take(), { type: 'subscribed', ch, epoch: '', id: 0 });
    const sent = Array.from({ length: 30 }, (_, i) => `payload ${i + 1}`);
    const answers = await publishMany(sc, ch, sent);
    const got = await c.messages.takeN(30, 10000);
    for (let i = 0; i < 30; i++) {
      assertEnvelope(got[i], { ch, id: i + 1, epoch: answers[i].epoch, data: sent[i] });
    }
    await closeWs(c);
  });

  test('subscribed notice of a channel with history gives its head', async () => {
    const ch = uniqueChannel('ws-head');
    const [, second] = await publishMany(sc, ch, ['one', 'two']);
    const c = await ws(`?ch=${ch}`);
    assert.deepEqual(await c.messages.take(), { type: 'subscribed', ch, epoch: second.epoch, id: 2 });
    const third = await publishOk(sc, ch, 'three');
    assertEnvelope(await c.messages.take(), { ch, id: 3, epoch: third.epoch, data: 'three' });
    await closeWs(c);
  });

  test('sub command with one channel and with an array; events in the envelope', async () => {
    const a = uniqueChannel('ws-a');
    const b = uniqueChannel('ws-b');
    const d = uniqueChannel('ws-d');
    const c = await ws();
    sendJson(c, { cmd: 'sub', ch: a });
    assert.deepEqual(await c.messages.take(), { type: 'subscribed', ch: a, epoch: '', id: 0 });
    sendJson(c, { cmd: 'sub', ch: [b, d] });
    assert.deepEqual(await c.messages.takeN(2), [
      { type: 'subscribed', ch: b, epoch: '', id: 0 },
      { type: 'subscribed', ch: d, epoch: '', id: 0 },
    ]);
    const pa = await publishOk(sc, a, 'to a', { event: 'typing' });
    const pb = await publishOk(sc, b, 'to b');
    const pd = await publishOk(sc, d, '{"x":1}', { event: 'x.y:z-1' });
    const got = await c.messages.takeN(3);
    assertEnvelope(got[0], { ch: a, id: 1, epoch: pa.epoch, event: 'typing', data: 'to a' });
    assertEnvelope(got[1], { ch: b, id: 1, epoch: pb.epoch, data: 'to b' });
    assertEnvelope(got[2], { ch: d, id: 1, epoch: pd.epoch, event: 'x.y:z-1', data: '{"x":1}' });
    await closeWs(c);
  });

  test('two channels from the query string interleave in publish order', async () => {
    const a = uniqueChannel('ws-two-a');
    const b = uniqueChannel('ws-two-b');
    const c = await ws(`?ch=${a},${b}`);
    await c.messages.takeN(2);
    const expected = [];
    for (let i = 1; i <= 10; i++) {
      const ch = i % 3 === 0 ? b : a;
      const p = await publishOk(sc, ch, `m${i}`);
      expected.push([ch, p.id, `m${i}`]);
    }
    const got = await c.messages.takeN(10);
    assert.deepEqual(
      got.map((m) => [m.ch, m.id, m.data]),
      expected,
    );
    await closeWs(c);
  });

  test('unsub stops delivery of that channel only', async () => {
    const a = uniqueChannel('ws-unsub-a');
    const b = uniqueChannel('ws-unsub-b');
    const c = await ws(`?ch=${a},${b}`);
    await c.messages.takeN(2);
    sendJson(c, { cmd: 'unsub', ch: a });
    assert.deepEqual(await c.messages.take(), { type: 'unsubscribed', ch: a });
    await publishOk(sc, a, 'not for you');
    await publishOk(sc, b, 'for you');
    const next = await c.messages.take();
    assert.equal(next.ch, b, `expected only ${b}, got ${JSON.stringify(next)}`);
    assert.equal(next.data, 'for you');
    sendJson(c, { cmd: 'unsub', ch: [b] });
    assert.deepEqual(await c.messages.take(), { type: 'unsubscribed', ch: b });
    await publishOk(sc, b, 'nobody');
    sendJson(c, { cmd: 'ping' });
    assert.deepEqual(await c.messages.take(), { type: 'pong' }, 'nothing delivered after unsub');
    await closeWs(c);
  });

  test('ping command answers pong', async () => {
    const c = await ws();
    for (let i = 0; i < 3; i++) {
      sendJson(c, { cmd: 'ping' });
      assert.deepEqual(await c.messages.take(), { type: 'pong' });
    }
    await closeWs(c);
  });

  test('subscribing again to a subscribed channel keeps its position (no replay, no duplicate)', async () => {
    const ch = uniqueChannel('ws-resub');
    const c = await ws(`?ch=${ch}`);
    await c.messages.take();
    await publishOk(sc, ch, 'first');
    assert.equal((await c.messages.take()).data, 'first');
    sendJson(c, { cmd: 'sub', ch, since: '.0' });
    await publishOk(sc, ch, 'second');
    sendJson(c, { cmd: 'ping' });
    const rest = await c.messages.takeN(2);
    const kinds = rest.map((m) => m.type ?? m.data);
    assert.ok(
      kinds.includes('second') && kinds.includes('pong') && !kinds.includes('first'),
      JSON.stringify(rest),
    );
    await closeWs(c);
  });

  test('envelope text escapes < > & U+2028 U+2029', async () => {
    const ch = uniqueChannel('ws-escape');
    const c = await ws(`?ch=${ch}`);
    await c.messages.take();
    const data = '<script>alert("x")</script> & \u2028\u2029 ok';
    await publishOk(sc, ch, data);
    const m = await c.messages.take();
    assert.equal(m.data, data);
    const text = c.raw.at(-1);
    assert.doesNotMatch(text, /[<>&\u2028\u2029]/);
    await closeWs(c);
  });

  test('too many channels by command gives an error and the socket stays usable', async () => {
    const c = await ws();
    const names = Array.from({ length: 5 }, () => uniqueChannel('ws-many'));
    sendJson(c, { cmd: 'sub', ch: names });
    const replies = await c.messages.takeN(5);
    assert.deepEqual(
      replies.slice(0, 4).map((r) => r.type),
      ['subscribed', 'subscribed', 'subscribed', 'subscribed'],
    );
    assert.equal(replies[4].type, 'error');
    assert.match(replies[4].error, /too many channels/);
    sendJson(c, { cmd: 'ping' });
    assert.deepEqual(await c.messages.take(), { type: 'pong' });
    await closeWs(c);
  });

  test('close handshake: the client close code is echoed', async () => {
    const c = await ws();
    c.ws.close(1000, 'bye');
    assert.equal((await c.closed).code, 1000);
    const d = await ws();
    d.ws.close(4001, 'app reason');
    assert.equal((await d.closed).code, 4001);
  });

  test('handshake errors are plain HTTP answers', async () => {
    const base = 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
    const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const v8 = await rawRequest(sc.port, `${base}${key}Sec-WebSocket-Version: 8\r\n\r\n`);
    assert.equal(v8.status, 426);
    assert.equal(v8.headers['sec-websocket-version'], '13');
    const noKey = await rawRequest(sc.port, `${base}Sec-WebSocket-Version: 13\r\n\r\n`);
    assert.equal(noKey.status, 400);
    const badKey = await rawRequest(sc.port, `${base}Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    assert.equal(badKey.status, 400);
    const noUpgrade = await rawRequest(sc.port, 'GET /ws HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(noUpgrade.status, 400);
    assert.equal(noUpgrade.json.status, 400);
    const badChannel = await rawRequest(sc.port, `GET /ws?ch=bad%20name HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${key}Sec-WebSocket-Version: 13\r\n\r\n`);
    assert.equal(badChannel.status, 400);
    // The key from RFC 6455's example gives the RFC's accept value.
    const ok = await RawWebSocket.connect(sc.port, '/ws');
    ok.destroy();
  });
});

describe('WebSocket heartbeat, origins and shutdown', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--heartbeat', '200ms', '--allowed-origins', 'https://good.example']);
  });
  after(async () => {
    await sc?.stop();
  });

  test('the server pings every heartbeat; a client that answers stays connected', async () => {
    const ch = uniqueChannel('ws-hb');
    const c = await openWs(`${sc.wsUrl}/ws?ch=${ch}`);
    try {
      await c.messages.take();
      let pings = 0;
      await new Promise((resolve) => {
        c.ws.on('ping', () => {
          pings += 1;
          if (pings === 5) resolve();
        });
      });
      // More than three heartbeats have passed; pongs kept the socket alive.
      assert.equal(c.ws.readyState, WebSocket.OPEN);
      await publishOk(sc, ch, 'still here');
      assert.equal((await c.messages.take()).data, 'still here');
    } finally {
      await closeWs(c);
    }
  });

  test('a peer silent for three heartbeats is dropped', async () => {
    const raw = await RawWebSocket.connect(sc.port, '/ws');
    const started = Date.now();
    const ping = await raw.nextFrame(2000);
    assert.equal(ping.opcode, 9, 'first frame is a ping');
    await raw.client.waitClosed(5000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 450, `dropped after ${elapsed} ms, before three heartbeats`);
  });

  test('Origin must be allowed', async () => {
    const head = (origin) =>
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: ${origin}\r\n\r\n`;
    const bad = await rawRequest(sc.port, head('https://evil.example'));
    assert.equal(bad.status, 403);
    const good = await rawRequest(sc.port, head('https://good.example'));
    assert.equal(good.status, 101);
    assert.equal(good.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    const c = await openWs(`${sc.wsUrl}/ws`, { origin: 'https://good.example' });
    await closeWs(c);
    await assert.rejects(openWs(`${sc.wsUrl}/ws`, { origin: 'https://evil.example' }), /403/);
  });

  test('server shutdown closes sockets with 1001 and exits 0', async () => {
    const own = await startSidecar([]);
    let stopped = false;
    try {
      const c = await openWs(`${own.wsUrl}/ws?ch=${uniqueChannel('bye')}`);
      await c.messages.take();
      const [exit, close] = await Promise.all([own.stop(), c.closed]);
      stopped = true;
      assert.equal(exit.code, 0);
      assert.equal(close.code, 1001);
    } finally {
      if (!stopped) own.kill();
    }
  });
});

// The WebSocket echo endpoint (--ws-echo-path), used for conformance: text and binary
// echo, fragmentation, control frames interleaved with fragments, ping/pong, limits.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { WebSocket } from './lib/clients.mjs';
import { closePayload, OP, Queue, RawWebSocket, startSidecar, withTimeout } from './lib/sidecar.mjs';

const LIMIT = 65536;

describe('WebSocket echo endpoint', () => {
  let sc;
  const sockets = [];
  before(async () => {
    sc = await startSidecar(['--ws-echo-path', '/echo', '--max-message-bytes', String(LIMIT)]);
  });
  after(async () => {
    for (const ws of sockets) ws.terminate();
    await sc?.stop();
  });

  /** A `ws` client on /echo with its messages as {data: Buffer, isBinary}. */
  async function echo() {
    const ws = new WebSocket(`${sc.wsUrl}/echo`, { perMessageDeflate: false });
    sockets.push(ws);
    const messages = new Queue('echo messages');
    const pongs = new Queue('pongs');
    const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data, isBinary) => messages.push({ data, isBinary }));
    ws.on('pong', (data) => pongs.push(data));
    ws.on('error', () => {});
    await withTimeout(new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('unexpected-response', (req, res) => reject(new Error(`handshake ${res.statusCode}`)));
    }), 5000, 'echo socket to open');
    return { ws, messages, pongs, closed };
  }

  test('text and binary messages come back unchanged, with their type', async () => {
    const c = await echo();
    c.ws.send('hello, echo ✓ 😀');
    const text = await c.messages.take();
    assert.equal(text.isBinary, false);
    assert.equal(text.data.toString('utf8'), 'hello, echo ✓ 😀');
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    c.ws.send(bytes);
    const binary = await c.messages.take();
    assert.equal(binary.isBinary, true);
    assert.deepEqual(binary.data, bytes);
    c.ws.send('');
    const empty = await c.messages.take();
    assert.equal(empty.data.length, 0);
    c.ws.close(1000);
    assert.equal(await c.closed, 1000);
  });

  test('every length encoding (7-bit, 16-bit, 64-bit) up to the limit', async () => {
    const c = await echo();
    for (const size of [125, 126, 127, 65535, LIMIT]) {
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 31 + size) & 0xff;
      c.ws.send(payload);
      const got = await c.messages.take(10000);
      assert.equal(got.data.length, size);
      assert.ok(got.data.equals(payload), `payload of ${size} bytes differs`);
    }
    c.ws.close();
  });

  test('many messages are echoed in order', async () => {
    const c = await echo();
    for (let i = 0; i < 500; i++) c.ws.send(`msg ${i}`);
    const got = await c.messages.takeN(500, 20000);
    assert.deepEqual(
      got.map((m) => m.data.toString()),
      Array.from({ length: 500 }, (_, i) => `msg ${i}`),
    );
    c.ws.close();
  });

  test('a fragmented message is echoed as one message', async () => {
    const c = await echo();
    c.ws.send('frag-1 ', { fin: false });
    c.ws.send('frag-2 ', { fin: false });
    c.ws.send('frag-3');
    const got = await c.messages.take();
    assert.equal(got.data.toString(), 'frag-1 frag-2 frag-3');
    c.ws.send(Buffer.from([1, 2]), { fin: false, binary: true });
    c.ws.send(Buffer.from([3]), { binary: true });
    const bin = await c.messages.take();
    assert.equal(bin.isBinary, true);
    assert.deepEqual([...bin.data], [1, 2, 3]);
    c.ws.close();
  });

  test('ping is answered with a pong carrying the same payload', async () => {
    const c = await echo();
    c.ws.ping(Buffer.from('are you there'));
    assert.equal((await c.pongs.take()).toString(), 'are you there');
    c.ws.ping();
    assert.equal((await c.pongs.take()).length, 0);
    c.ws.close();
  });

  test('control frames between fragments are handled at once; unsolicited pongs are ignored', async () => {
    const raw = await RawWebSocket.connect(sc.port, '/echo');
    try {
      raw.send({ opcode: OP.PONG, payload: 'unsolicited' });
      raw.send({ opcode: OP.TEXT, payload: 'a', fin: false });
      raw.send({ opcode: OP.PING, payload: 'p1' });
      raw.send({ opcode: OP.CONT, payload: 'b', fin: false });
      raw.send({ opcode: OP.PING, payload: 'p2' });
      raw.send({ opcode: OP.CONT, payload: 'c' });
      const frames = await raw.frames.takeN(3);
      assert.deepEqual(
        frames.map((f) => [f.opcode, f.fin, f.masked, f.payload.toString()]),
        [
          [OP.PONG, true, false, 'p1'],
          [OP.PONG, true, false, 'p2'],
          [OP.TEXT, true, false, 'abc'],
        ],
      );
      raw.send({ opcode: OP.CLOSE, payload: closePayload(1000, 'done') });
      const close = await raw.expectClose();
      assert.equal(close.code, 1000);
    } finally {
      raw.destroy();
    }
  });

  test('an empty close is answered and the connection ends', async () => {
    const raw = await RawWebSocket.connect(sc.port, '/echo');
    raw.send({ opcode: OP.CLOSE });
    const frame = await raw.nextFrame(5000, OP.CLOSE);
    assert.equal(frame.payload.length, 0, 'an empty close is answered with an empty close');
    await raw.client.waitClosed(5000);
  });

  test('invalid UTF-8 text is refused with 1007; binary may hold any bytes', async () => {
    const raw = await RawWebSocket.connect(sc.port, '/echo');
    raw.send({ opcode: OP.BINARY, payload: Buffer.from([0xff, 0xfe]) });
    const ok = await raw.nextFrame();
    assert.equal(ok.opcode, OP.BINARY);
    assert.deepEqual([...ok.payload], [0xff, 0xfe]);
    raw.send({ opcode: OP.TEXT, payload: Buffer.from([0xff, 0xfe]) });
    assert.equal((await raw.expectClose()).code, 1007);
  });

  test('a message over --max-message-bytes is refused with 1009', async () => {
    const c = await echo();
    c.ws.send(Buffer.alloc(LIMIT + 1));
    assert.equal(await c.closed, 1009);
    const d = await echo();
    d.ws.send(Buffer.alloc(LIMIT / 2 + 1), { fin: false });
    d.ws.send(Buffer.alloc(LIMIT / 2));
    assert.equal(await d.closed, 1009);
  });
});

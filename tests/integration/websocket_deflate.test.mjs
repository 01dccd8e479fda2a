// WebSocket permessage-deflate (RFC 7692) on GET /ws, driven by the `ws` package with
// perMessageDeflate on and by a raw socket that reads the server's frames as sent: long
// messages arrive compressed (RSV1) and decode, short ones go plain, compressed commands
// work, a zip-bomb command is closed with 1009, and --ws-deflate off declines.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import { closeWs, openWs, sendJson } from './lib/clients.mjs';
import {
  assertEnvelope,
  encodeFrame,
  OP,
  publishOk,
  RawClient,
  RawWebSocket,
  startSidecar,
  uniqueChannel,
} from './lib/sidecar.mjs';

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const RSV1 = 4; // parseFrame's rsv field: RSV1 RSV2 RSV3 as bits 2 1 0

// What a client does with a compressed payload (RFC 7692 7.2.2).
function inflate(payload) {
  return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

// What a client does to compress a message (RFC 7692 7.2.1): sync flush, tail removed.
function deflate(text) {
  const out = zlib.deflateRawSync(Buffer.from(text), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual(out.subarray(out.length - 4), TAIL);
  return out.subarray(0, out.length - 4);
}

// A 1 KB JSON payload of the kind chat and dashboards publish.
function jsonPayload(bytes = 1024) {
  const rows = [];
  for (let i = 0; JSON.stringify(rows).length < bytes; i++) {
    rows.push({ user: `user${i % 7}`, text: 'hello from the dashboard', ts: 1700000000 + i });
  }
  return JSON.stringify(rows);
}

// A raw WebSocket whose handshake offers `extensions`; resolves with the socket and the
// response headers (RawWebSocket.connect does not expose them).
async function rawWs(port, target, extensions) {
  const client = await RawClient.connect(port);
  const key = Buffer.from('0123456789abcdef').toString('base64');
  let head =
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
  if (extensions) head += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  client.write(`${head}\r\n`);
  const response = await client.readResponse(5000, { noBody: true });
  assert.equal(response.status, 101);
  return { ws: new RawWebSocket(client), headers: response.headers };
}

describe('WebSocket permessage-deflate', () => {
  let sc;
  const open = [];
  before(async () => {
    sc = await startSidecar(['--workers', '2', '--max-message-bytes', '65536']);
  });
  after(async () => {
    for (const c of open) c.ws?.terminate?.() ?? c.client?.destroy();
    await sc?.stop();
  });

  test('the ws client negotiates it; a 1 KB message arrives decoded', async () => {
    const ch = uniqueChannel('defl');
    const c = await openWs(`${sc.wsUrl}/ws?ch=${ch}`, { perMessageDeflate: true });
    open.push(c);
    assert.equal(c.ws.extensions, 'permessage-deflate'); // names only; parameters: next test
    assert.equal((await c.messages.take()).type, 'subscribed');
    const data = jsonPayload();
    const sent = await publishOk(sc, ch, data);
    assertEnvelope(await c.messages.take(), { ch, id: 1, epoch: sent.epoch, data });
    const short = await publishOk(sc, ch, 'hi');
    assertEnvelope(await c.messages.take(), { ch, id: 2, epoch: short.epoch, data: 'hi' });
    await closeWs(c);
  });

  test('on the wire: long messages are compressed (RSV1), short ones are not', async () => {
    const ch = uniqueChannel('defl-raw');
    const { ws, headers } = await rawWs(sc.port, `/ws?ch=${ch}`, 'permessage-deflate; client_max_window_bits');
    open.push(ws);
    assert.equal(
      headers['sec-websocket-extensions'],
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    );
    const subscribed = await ws.nextFrame(5000, OP.TEXT);
    assert.equal(subscribed.rsv, 0);
    const data = jsonPayload();
    await publishOk(sc, ch, data);
    const frame = await ws.nextFrame(5000, OP.TEXT);
    assert.equal(frame.rsv, RSV1);
    const envelope = inflate(frame.payload).toString('utf8');
    assert.equal(JSON.parse(envelope).data, data);
    assert.ok(frame.payload.length * 3 < envelope.length, `${frame.payload.length} bytes for ${envelope.length}`);
    await publishOk(sc, ch, 'short');
    const plain = await ws.nextFrame(5000, OP.TEXT);
    assert.equal(plain.rsv, 0);
    assert.equal(JSON.parse(plain.payload.toString('utf8')).data, 'short');
    ws.client.destroy();
  });

  test('server_max_window_bits is honoured: the client inflates with that window', async () => {
    const ch = uniqueChannel('defl-win');
    const { ws, headers } = await rawWs(sc.port, `/ws?ch=${ch}`, 'permessage-deflate; server_max_window_bits=9');
    open.push(ws);
    assert.match(headers['sec-websocket-extensions'], /; server_max_window_bits=9$/);
    await ws.nextFrame(5000, OP.TEXT);
    const data = jsonPayload(4000);
    await publishOk(sc, ch, data);
    const frame = await ws.nextFrame(5000, OP.TEXT);
    assert.equal(frame.rsv, RSV1);
    const envelope = zlib.inflateRawSync(Buffer.concat([frame.payload, TAIL]), {
      windowBits: 9,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    assert.equal(JSON.parse(envelope.toString('utf8')).data, data);
    ws.client.destroy();
  });

  test('compressed commands are inflated and answered', async () => {
    const ch = uniqueChannel('defl-cmd');
    const { ws } = await rawWs(sc.port, '/ws', 'permessage-deflate');
    open.push(ws);
    ws.send({ opcode: OP.TEXT, rsv: RSV1, payload: deflate(JSON.stringify({ cmd: 'sub', ch, pad: ' '.repeat(2000) })) });
    const answer = await ws.nextFrame(5000, OP.TEXT);
    assert.deepEqual(JSON.parse(answer.payload.toString('utf8')), { type: 'subscribed', ch, epoch: '', id: 0 });
    ws.client.destroy();

    // The ws client compresses what it sends (threshold 0: everything).
    const c = await openWs(`${sc.wsUrl}/ws`, { perMessageDeflate: { threshold: 0 } });
    open.push(c);
    sendJson(c, { cmd: 'ping' });
    assert.deepEqual(await c.messages.take(), { type: 'pong' });
    await closeWs(c);
  });

  test('a command that inflates past --max-message-bytes is closed with 1009', async () => {
    const { ws } = await rawWs(sc.port, '/ws', 'permessage-deflate');
    open.push(ws);
    const bomb = deflate(`{"cmd":"ping","pad":"${' '.repeat(16 << 20)}"}`);
    assert.ok(bomb.length < 65536, `bomb of ${bomb.length} bytes`);
    ws.sendBytes(encodeFrame({ opcode: OP.TEXT, rsv: RSV1, payload: bomb }));
    const close = await ws.nextFrame(5000, OP.CLOSE);
    assert.equal(close.code, 1009);
    await ws.client.waitClosed();

    // The same through the ws client.
    const c = await openWs(`${sc.wsUrl}/ws`, { perMessageDeflate: { threshold: 0 } });
    open.push(c);
    c.ws.send(' '.repeat(1 << 20));
    assert.equal((await c.closed).code, 1009);
  });

  test('RSV1 on a control frame is 1002; data that does not inflate is 1007', async () => {
    const a = await rawWs(sc.port, '/ws', 'permessage-deflate');
    open.push(a.ws);
    a.ws.send({ opcode: OP.PING, rsv: RSV1, payload: Buffer.alloc(0) });
    assert.equal((await a.ws.nextFrame(5000, OP.CLOSE)).code, 1002);
    const b = await rawWs(sc.port, '/ws', 'permessage-deflate');
    open.push(b.ws);
    b.ws.send({ opcode: OP.TEXT, rsv: RSV1, payload: Buffer.from([0x07, 0x01, 0x02]) });
    assert.equal((await b.ws.nextFrame(5000, OP.CLOSE)).code, 1007);
    // Without the extension RSV1 stays a protocol error.
    const plain = await rawWs(sc.port, '/ws', '');
    open.push(plain.ws);
    plain.ws.send({ opcode: OP.TEXT, rsv: RSV1, payload: deflate('{"cmd":"ping"}') });
    assert.equal((await plain.ws.nextFrame(5000, OP.CLOSE)).code, 1002);
  });
});

describe('WebSocket permessage-deflate off (--ws-deflate off) and the size threshold', () => {
  let off;
  let low;
  before(async () => {
    [off, low] = await Promise.all([
      startSidecar(['--workers', '1', '--ws-deflate', 'off']),
      startSidecar(['--workers', '1', '--ws-deflate-min-bytes', '10']),
    ]);
  });
  after(async () => {
    await Promise.all([off?.stop(), low?.stop()]);
  });

  test('--ws-deflate off declines the offer; messages arrive plain', async () => {
    const ch = uniqueChannel('defl-off');
    const c = await openWs(`${off.wsUrl}/ws?ch=${ch}`, { perMessageDeflate: true });
    assert.equal(c.ws.extensions, '');
    await c.messages.take();
    const data = jsonPayload();
    const sent = await publishOk(off, ch, data);
    assertEnvelope(await c.messages.take(), { ch, id: 1, epoch: sent.epoch, data });
    await closeWs(c);

    const { ws, headers } = await rawWs(off.port, `/ws?ch=${ch}`, 'permessage-deflate');
    assert.equal(headers['sec-websocket-extensions'], undefined);
    await ws.nextFrame(5000, OP.TEXT);
    await publishOk(off, ch, data);
    assert.equal((await ws.nextFrame(5000, OP.TEXT)).rsv, 0);
    ws.client.destroy();
  });

  test('--ws-deflate-min-bytes sets which messages are compressed', async () => {
    const ch = uniqueChannel('defl-min');
    const { ws } = await rawWs(low.port, `/ws?ch=${ch}`, 'permessage-deflate');
    await ws.nextFrame(5000, OP.TEXT);
    await publishOk(low, ch, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
    const frame = await ws.nextFrame(5000, OP.TEXT);
    assert.equal(frame.rsv, RSV1);
    assert.equal(JSON.parse(inflate(frame.payload).toString('utf8')).data.length, 56);
    ws.client.destroy();
  });
});

// Malformed and hostile input: every case gets the documented answer, and afterwards
// the server is still healthy, has released every connection and subscription, and
// exits 0 under ASan/UBSan/LSan (checked by stop() in the after hook).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { closeWs, openWs, sendJson } from './lib/clients.mjs';
import {
  closePayload,
  healthz,
  OP,
  RawClient,
  RawWebSocket,
  rawRequest,
  startSidecar,
  uniqueChannel,
  waitUntil,
} from './lib/sidecar.mjs';

const MAX_MESSAGE = 1024;

/** Sends `bytes`, expects `status` with a JSON error body, and returns the response. */
async function expectError(port, bytes, status, { closes = false } = {}) {
  const client = await RawClient.connect(port);
  try {
    client.write(bytes);
    const res = await client.readResponse();
    assert.equal(res.status, status, `${JSON.stringify(String(bytes).slice(0, 120))} -> ${res.status} ${res.body}`);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(res.json.status, status);
    assert.equal(typeof res.json.error, 'string');
    if (closes) await client.waitClosed(5000);
    return res;
  } finally {
    client.destroy();
  }
}

describe('bad input', () => {
  let sc;
  before(async () => {
    sc = await startSidecar([
      '--workers', '2',
      '--max-header-bytes', '2048',
      '--max-url-bytes', '1024',
      '--max-message-bytes', String(MAX_MESSAGE),
      '--max-channels', '4',
      '--ws-echo-path', '/echo',
    ]);
  });
  after(async () => {
    await sc?.stop();
  });

  test('malformed request lines and headers: 400 and the connection is closed', async () => {
    const cases = [
      'GARBAGE\r\n\r\n',
      'GET\r\n\r\n',
      ' GET /healthz HTTP/1.1\r\n\r\n',
      'GET /healthz HTTP/1.1 extra\r\n\r\n',
      'GET healthz HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /healthz HTTP/x.y\r\n\r\n',
      'G\u0000T /healthz HTTP/1.1\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n',
      'GET /healthz HTTP/1.1\r\n: empty name\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nX: a\u0000b\r\n\r\n',
      'POST /pub/x HTTP/1.1\r\nContent-Length: abc\r\n\r\n',
      'POST /pub/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n',
      'POST /pub/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      'POST /pub/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      // RFC 9112: exactly one Host on HTTP/1.1; no obs-fold.
      'GET /healthz HTTP/1.1\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET /healthz HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n\ttwo\r\n\r\n',
    ];
    for (const bytes of cases) await expectError(sc.port, bytes, 400, { closes: true });
    // An unknown transfer coding is 501 (RFC 9112 section 6.1).
    await expectError(sc.port, 'POST /pub/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 501, { closes: true });
  });

  test('HTTP versions other than 1.x get 505', async () => {
    await expectError(sc.port, 'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n', 505, { closes: true });
    await expectError(sc.port, 'GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n', 505, { closes: true });
    // A request line without a version is an HTTP/0.9 request: 505 as well.
    await expectError(sc.port, 'GET /healthz\r\n\r\n', 505, { closes: true });
  });

  test('request line + headers over --max-header-bytes: 431', async () => {
    // Just under the limit is fine.
    const ok = await rawRequest(sc.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(1800)}\r\n\r\n`);
    assert.equal(ok.status, 200);
    await expectError(sc.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(3000)}\r\n\r\n`, 431, { closes: true });
    // Many small headers add up too, and an endless header section is cut off early.
    let many = 'GET /healthz HTTP/1.1\r\n';
    for (let i = 0; i < 200; i++) many += `X-H${i}: v\r\n`;
    await expectError(sc.port, `${many}\r\n`, 431, { closes: true });
    await expectError(sc.port, `GET /healthz HTTP/1.1\r\nX-Endless: ${'e'.repeat(5000)}`, 431, { closes: true });
  });

  test('request target over --max-url-bytes: 414', async () => {
    await expectError(sc.port, `GET /poll?ch=${'a'.repeat(1100)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, { closes: true });
  });

  test('unknown path: 404, and the connection stays usable', async () => {
    const client = await RawClient.connect(sc.port);
    try {
      client.write('GET /no/such/thing HTTP/1.1\r\nHost: x\r\n\r\n');
      const res = await client.readResponse();
      assert.equal(res.status, 404);
      assert.equal(res.json.status, 404);
      client.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal((await client.readResponse()).status, 200);
    } finally {
      client.destroy();
    }
  });

  test('wrong method: 405 with Allow', async () => {
    const cases = [
      ['POST', '/sse?ch=a', /GET/],
      ['DELETE', '/poll?ch=a', /GET/],
      ['PUT', '/ws', /GET/],
      ['POST', '/healthz', /GET/],
      ['GET', '/pub/a', /POST/],
      ['PATCH', '/pub/a', /POST/],
    ];
    for (const [method, target, allow] of cases) {
      const res = await expectError(sc.port, `${method} ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`, 405);
      assert.match(res.headers.allow ?? '', allow, `${method} ${target}: Allow ${res.headers.allow}`);
    }
  });

  test('bad JSONP callback names: 400', async () => {
    for (const callback of ['alert(1)', 'a;b', '1abc', 'a..b', '.a', 'a.', 'x-y', 'a b', '', 'a'.repeat(65), '%3Cscript%3E']) {
      await expectError(sc.port, `GET /poll?ch=a&wait=0&callback=${callback} HTTP/1.1\r\nHost: x\r\n\r\n`, 400);
    }
    const ok = await rawRequest(sc.port, `GET /poll?ch=a&wait=0&callback=${'a'.repeat(64)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(ok.status, 200);
  });

  test('channels: none, invalid, or more than --max-channels: 400 on every transport', async () => {
    const ws = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
    const five = 'a,b,c,d,e';
    for (const [path, extra] of [['/sse', ''], ['/poll', ''], ['/ws', ws]]) {
      const sep = '?';
      await expectError(sc.port, `GET ${path}${sep}ch=${five} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`, 400);
      await expectError(sc.port, `GET ${path}${sep}ch=ok,bad!name HTTP/1.1\r\nHost: x\r\n${extra}\r\n`, 400);
      await expectError(sc.port, `GET ${path}${sep}ch=a%2Cb%40c HTTP/1.1\r\nHost: x\r\n${extra}\r\n`, 400);
      if (path !== '/ws') await expectError(sc.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, 400);
    }
    // Four is the limit, not over it; duplicates count once.
    const four = await rawRequest(sc.port, 'GET /poll?ch=a,b,c,d,a&wait=0 HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(four.status, 200, four.body);
  });

  test('bad cursors: 400', async () => {
    const bad = ['garbage', 'a@', 'a@E', 'a@E.x', 'a@E.-1', 'a@E.1x', '@E.1', 'a@e!.1', `a@${'e'.repeat(33)}.1`, 'a b@E.1', 'a@E.99999999999999999999999'];
    for (const cursor of bad) {
      const q = encodeURIComponent(cursor);
      await expectError(sc.port, `GET /poll?ch=a&wait=0&cursor=${q} HTTP/1.1\r\nHost: x\r\n\r\n`, 400);
      await expectError(sc.port, `GET /sse?ch=a&cursor=${q} HTTP/1.1\r\nHost: x\r\n\r\n`, 400);
      await expectError(sc.port, `GET /sse?ch=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${cursor}\r\n\r\n`, 400);
    }
  });

  test('bad percent-escapes: 400', async () => {
    for (const query of ['ch=%zz', 'ch=%4', 'ch=a%', '%G0=1']) {
      await expectError(sc.port, `GET /poll?${query}&wait=0 HTTP/1.1\r\nHost: x\r\n\r\n`, 400);
    }
  });

  test('WebSocket: unmasked client frame closes with 1002', async () => {
    const raw = await RawWebSocket.connect(sc.port, '/ws');
    raw.send({ opcode: OP.TEXT, payload: '{"cmd":"ping"}', mask: false });
    assert.equal((await raw.expectClose()).code, 1002);
  });

  test('WebSocket: other protocol errors close with 1002', async () => {
    const cases = {
      'reserved bit set': [{ opcode: OP.TEXT, payload: '{"cmd":"ping"}', rsv: 4 }],
      'reserved opcode 3': [{ opcode: 3, payload: 'x' }],
      'reserved control opcode 0xB': [{ opcode: 0xb, payload: '' }],
      'continuation without a start': [{ opcode: OP.CONT, payload: 'x' }],
      'new message inside a fragmented one': [
        { opcode: OP.TEXT, payload: '{"cmd":', fin: false },
        { opcode: OP.TEXT, payload: '"ping"}' },
      ],
      'control frame over 125 bytes': [{ opcode: OP.PING, payload: Buffer.alloc(126) }],
      'fragmented control frame': [{ opcode: OP.PING, payload: 'x', fin: false }],
      'close code 1005 on the wire': [{ opcode: OP.CLOSE, payload: closePayload(1005) }],
      'close code 999': [{ opcode: OP.CLOSE, payload: closePayload(999) }],
      'one-byte close payload': [{ opcode: OP.CLOSE, payload: Buffer.from([3]) }],
    };
    for (const [what, frames] of Object.entries(cases)) {
      const raw = await RawWebSocket.connect(sc.port, '/ws');
      for (const frame of frames) raw.send(frame);
      const close = await raw.expectClose().catch((err) => ({ code: `none (${err.message})` }));
      assert.equal(close.code, 1002, what);
    }
  });

  test('WebSocket: frame or message over --max-message-bytes closes with 1009', async () => {
    const c = await openWs(`${sc.wsUrl}/ws`);
    c.ws.send(JSON.stringify({ cmd: 'ping', pad: 'x'.repeat(MAX_MESSAGE) }));
    assert.equal((await c.closed).code, 1009);

    // A frame header announcing too much is refused before any payload arrives.
    const announce = await RawWebSocket.connect(sc.port, '/ws');
    const header = Buffer.from([0x81, 0xfe, 0xff, 0xff, 1, 2, 3, 4]); // masked text, 65535 bytes
    announce.sendBytes(header);
    assert.equal((await announce.expectClose()).code, 1009);

    // Fragments each under the limit that add up to more than it.
    const frag = await RawWebSocket.connect(sc.port, '/ws');
    const part = Buffer.alloc(MAX_MESSAGE / 2 + 10, 'a');
    frag.send({ opcode: OP.TEXT, payload: part, fin: false });
    frag.send({ opcode: OP.CONT, payload: part, fin: false });
    frag.send({ opcode: OP.CONT, payload: part });
    assert.equal((await frag.expectClose()).code, 1009);
  });

  test('WebSocket: invalid UTF-8 in a text message or close reason closes with 1007', async () => {
    const cases = {
      'invalid byte': [{ opcode: OP.TEXT, payload: Buffer.from([0x7b, 0xff, 0x7d]) }],
      'surrogate': [{ opcode: OP.TEXT, payload: Buffer.from([0xed, 0xa0, 0x80]) }],
      'sequence split over fragments, then truncated': [
        { opcode: OP.TEXT, payload: Buffer.from([0x61, 0xe2]), fin: false },
        { opcode: OP.CONT, payload: Buffer.from([0x82]) },
      ],
      'close reason': [{ opcode: OP.CLOSE, payload: Buffer.concat([closePayload(1000), Buffer.from([0xc0, 0xaf])]) }],
    };
    for (const [what, frames] of Object.entries(cases)) {
      const raw = await RawWebSocket.connect(sc.port, '/ws');
      for (const frame of frames) raw.send(frame);
      const close = await raw.expectClose().catch((err) => ({ code: `none (${err.message})` }));
      assert.equal(close.code, 1007, what);
    }
    // A valid multi-byte character split across fragments is fine.
    const ok = await RawWebSocket.connect(sc.port, '/ws');
    try {
      const text = Buffer.from('{"cmd":"ping","x":"é"}');
      const cut = text.indexOf(0xc3) + 1;
      ok.send({ opcode: OP.TEXT, payload: text.subarray(0, cut), fin: false });
      ok.send({ opcode: OP.CONT, payload: text.subarray(cut) });
      assert.deepEqual(await ok.nextJson(), { type: 'pong' });
    } finally {
      ok.destroy();
    }
  });

  test('WebSocket: binary message on /ws closes with 1003', async () => {
    const c = await openWs(`${sc.wsUrl}/ws`);
    c.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await c.closed).code, 1003);
  });

  test('WebSocket: bad commands get {"type":"error"} and the socket stays open', async () => {
    const c = await openWs(`${sc.wsUrl}/ws`);
    const bad = [
      'not json',
      '',
      '[]',
      '"sub"',
      '{}',
      '{"cmd":1}',
      '{"cmd":"dance"}',
      '{"cmd":"sub"}',
      '{"cmd":"sub","ch":""}',
      '{"cmd":"sub","ch":"bad name"}',
      '{"cmd":"sub","ch":[]}',
      '{"cmd":"sub","ch":["ok",7]}',
      '{"cmd":"sub","ch":{"a":1}}',
      '{"cmd":"sub","ch":"ok","since":"garbage"}',
      '{"cmd":"sub","ch":"ok","since":5}',
      '{"cmd":"unsub","ch":7}',
      '{"cmd":"ping"',
    ];
    for (const text of bad) {
      c.ws.send(text);
      const reply = await c.messages.take();
      assert.equal(reply.type, 'error', `${text} -> ${JSON.stringify(reply)}`);
      assert.equal(typeof reply.error, 'string');
    }
    const ch = uniqueChannel('bad-then-good');
    sendJson(c, { cmd: 'sub', ch });
    assert.deepEqual(await c.messages.take(), { type: 'subscribed', ch, epoch: '', id: 0 });
    sendJson(c, { cmd: 'ping' });
    assert.deepEqual(await c.messages.take(), { type: 'pong' });
    await closeWs(c);
  });

  test('garbage bytes from many connections never crash the server', async () => {
    // A fixed-seed generator: the same bytes every run.
    let seed = 0x2545f491;
    const next = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const prefixes = ['', 'GET / HTTP/1.1\r\n', 'POST /pub/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', 'GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'];
    const runs = [];
    for (let i = 0; i < 40; i++) {
      const bytes = Buffer.alloc(200 + (next() % 3000));
      for (let j = 0; j < bytes.length; j++) bytes[j] = next() & 0xff;
      const payload = Buffer.concat([Buffer.from(prefixes[i % prefixes.length]), bytes]);
      runs.push(
        (async () => {
          const client = await RawClient.connect(sc.port);
          client.write(payload);
          // Each connection ends in an answer and a close; stop waiting after that or 2 s.
          await client.waitClosed(2000).catch(() => {});
          client.destroy();
        })(),
      );
    }
    await Promise.all(runs);
    await healthz(sc);
  });

  test('afterwards: /healthz answers and every connection and subscription was released', async () => {
    const body = await waitUntil(
      async () => {
        const h = await healthz(sc);
        return h.connections === 1 && h.subscriptions === 0 ? h : null;
      },
      { timeoutMs: 10000, what: 'connections to drop to 1 (this one) and subscriptions to 0' },
    );
    assert.equal(body.status, 'ok');
  });
});

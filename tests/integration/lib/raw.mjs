// Byte-level clients for what third-party clients will not send or do not expose:
// malformed HTTP, pipelining, raw SSE streams, hand-built WebSocket frames, and a TCP
// proxy that can cut and hold connections.

import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { StringDecoder } from 'node:string_decoder';

import { Queue, withTimeout } from './async.mjs';

// ---------------------------------------------------------------------------------
// HTTP responses

/**
 * Parses one HTTP/1.x response at the start of `buf`. Returns null when incomplete,
 * else {response: {status, reason, version, headers, rawHead, body}, consumed}.
 * Bodies: Content-Length, none for 1xx/204/304/101, else up to EOF (needs `eof`).
 * Header names are lower-cased; repeated headers are joined with ", ".
 */
export function parseHttpResponse(buf, eof = false, { noBody = false } = {}) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const rawHead = buf.subarray(0, headEnd).toString('latin1');
  const [statusLine, ...lines] = rawHead.split('\r\n');
  const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(statusLine);
  if (!m) throw new Error(`malformed status line: ${JSON.stringify(statusLine)}`);
  const headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  const status = Number(m[2]);
  const bodyStart = headEnd + 4;
  let bodyEnd;
  if (noBody || (status >= 100 && status < 200) || status === 204 || status === 304) {
    bodyEnd = bodyStart;
  } else if (headers['content-length'] !== undefined) {
    bodyEnd = bodyStart + Number(headers['content-length']);
    if (buf.length < bodyEnd) return null;
  } else {
    if (!eof) return null;
    bodyEnd = buf.length;
  }
  return {
    response: {
      version: m[1],
      status,
      reason: m[3],
      headers,
      rawHead,
      body: buf.subarray(bodyStart, bodyEnd).toString('utf8'),
      get json() {
        return JSON.parse(this.body);
      },
    },
    consumed: bodyEnd,
  };
}

/**
 * A TCP connection with a byte buffer tests read from. Reading is explicit
 * (readResponse, waitForBytes) so pipelined answers can be checked one by one.
 */
export class RawClient {
  static connect(port, host = '127.0.0.1', { timeoutMs = 5000 } = {}) {
    const socket = net.connect({ port, host });
    const client = new RawClient(socket);
    return withTimeout(
      new Promise((resolve, reject) => {
        socket.once('connect', () => resolve(client));
        socket.once('error', reject);
      }),
      timeoutMs,
      `TCP connect to ${host}:${port}`,
    );
  }

  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.totalBytes = 0;
    this.ended = false;
    this.error = null;
    this.waiters = [];
    this.closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('data', (chunk) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.totalBytes += chunk.length;
      this.#wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.#wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.ended = true;
      this.#wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.#wake();
    });
  }

  write(data) {
    this.socket.write(data);
  }

  /** Waits until `fn(buffer, ended)` returns something other than undefined/null. */
  async waitFor(fn, timeoutMs = 5000, what = 'data') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = fn(this.buf, this.ended);
      if (value !== undefined && value !== null) return value;
      if (this.ended) {
        throw new Error(`connection closed while waiting for ${what}; buffered: ${JSON.stringify(this.buf.toString('latin1').slice(0, 500))}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; buffered: ${JSON.stringify(this.buf.toString('latin1').slice(0, 500))}`);
      }
      await withTimeout(new Promise((resolve) => this.waiters.push(resolve)), left, what).catch(() => {});
    }
  }

  /** Reads (and consumes) the next complete HTTP response (`noBody` for answers to HEAD). */
  async readResponse(timeoutMs = 5000, { noBody = false } = {}) {
    const parsed = await this.waitFor((buf, eof) => parseHttpResponse(buf, eof, { noBody }), timeoutMs, 'an HTTP response');
    this.buf = this.buf.subarray(parsed.consumed);
    return parsed.response;
  }

  /** Resolves when the peer has closed the connection (rejects after the timeout). */
  async waitClosed(timeoutMs = 5000) {
    await withTimeout(this.closed, timeoutMs, 'the server to close the connection');
  }

  /** Bytes received, consumed from the buffer. */
  takeAll() {
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
  }

  destroy() {
    this.socket.destroy();
  }

  #wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/**
 * Sends `bytes` on a fresh connection and returns the first response. The socket is
 * closed afterwards; `closedAfter` tells whether the server closed it by itself.
 */
export async function rawRequest(port, bytes, { timeoutMs = 5000 } = {}) {
  const client = await RawClient.connect(port);
  try {
    client.write(bytes);
    const response = await client.readResponse(timeoutMs);
    return response;
  } finally {
    client.destroy();
  }
}

// ---------------------------------------------------------------------------------
// Server-Sent Events

/**
 * An incremental text/event-stream parser (WHATWG rules for lines and fields). It
 * yields every block up to a blank line, including blocks that dispatch nothing
 * (id-only, retry-only, comments), as {fields: [[name, value]], comments: [..], id,
 * event, data, retry} where id/event/retry are the values of those fields in the block
 * (undefined if absent) and data is the data lines joined with "\n" (undefined if none).
 */
export class SseParser {
  constructor(onBlock) {
    this.onBlock = onBlock;
    this.decoder = new StringDecoder('utf8');
    this.pending = '';
    this.sawCR = false;
    this.block = null;
  }

  feed(chunk) {
    let text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    if (this.sawCR && text.startsWith('\n')) text = text.slice(1); // CRLF split across chunks
    this.sawCR = false;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#line(this.pending + text.slice(start, i));
      this.pending = '';
      if (c === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else {
          this.sawCR = true;
        }
      }
      start = i + 1;
    }
    this.pending += text.slice(start);
  }

  #line(line) {
    if (line === '') {
      if (this.block !== null) this.onBlock(this.block);
      this.block = null;
      return;
    }
    if (this.block === null) {
      this.block = { fields: [], comments: [], id: undefined, event: undefined, data: undefined, retry: undefined };
    }
    if (line.startsWith(':')) {
      this.block.comments.push(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.block.fields.push([name, value]);
    if (name === 'data') this.block.data = this.block.data === undefined ? value : `${this.block.data}\n${value}`;
    else if (name === 'id' || name === 'event' || name === 'retry') this.block[name] = value;
  }
}

/**
 * A raw SSE subscriber over TCP: sends GET `target` and parses the stream. `blocks`
 * is a Queue of parsed blocks; `response` holds the status and headers. With
 * `onBlock` the blocks are passed to the callback instead of being queued (cheap
 * enough for a thousand streams).
 */
export class SseStream {
  static async open(port, target, { headers = {}, timeoutMs = 5000, onBlock = null } = {}) {
    const client = await RawClient.connect(port, '127.0.0.1', { timeoutMs });
    const stream = new SseStream(client, onBlock);
    let head = `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    client.write(`${head}\r\n`);
    await stream.#readHead(timeoutMs);
    return stream;
  }

  constructor(client, onBlock) {
    this.client = client;
    this.blocks = new Queue(`SSE stream`);
    this.onBlock = onBlock ?? ((block) => this.blocks.push(block));
    this.parser = new SseParser((block) => this.onBlock(block));
    this.response = null;
  }

  async #readHead(timeoutMs) {
    const client = this.client;
    const headEnd = await client.waitFor(
      (buf, eof) => {
        const i = buf.indexOf('\r\n\r\n');
        if (i >= 0) return i;
        return eof ? -1 : undefined;
      },
      timeoutMs,
      'SSE response headers',
    );
    if (headEnd < 0) {
      throw new Error(`the server closed the connection before the response headers (${client.buf.length} bytes received)`);
    }
    const parsed = parseHttpResponse(client.buf, true);
    this.response = parsed.response;
    if (this.response.status !== 200) {
      // An error answer: keep its body, no stream follows.
      client.takeAll();
      return;
    }
    const rest = client.buf.subarray(headEnd + 4);
    client.buf = Buffer.alloc(0);
    if (rest.length > 0) this.parser.feed(rest);
    // From here on, feed the parser directly rather than buffering.
    client.socket.removeAllListeners('data');
    client.socket.on('data', (chunk) => {
      client.totalBytes += chunk.length;
      this.parser.feed(chunk);
    });
    client.closed.then(() => this.blocks.close('connection closed'));
  }

  /** The next block that dispatches an event (has data), skipping comments and id-only blocks. */
  nextEvent(timeoutMs = 5000) {
    return this.blocks.take(timeoutMs, (b) => b.data !== undefined);
  }

  close() {
    this.client.destroy();
  }
}

// ---------------------------------------------------------------------------------
// WebSocket frames

export const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

/** Encodes one frame; masked (as a client must) unless `mask` is false. */
export function encodeFrame({ opcode, payload = Buffer.alloc(0), fin = true, mask = true, rsv = 0, declaredLength }) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const length = declaredLength ?? data.length;
  let header;
  if (length < 126) {
    header = Buffer.alloc(2);
    header[1] = length;
  } else if (length < 65536) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
  header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!mask) return Buffer.concat([header, data]);
  header[1] |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i & 3];
  return Buffer.concat([header, key, masked]);
}

/** A close frame payload: code + reason. */
export function closePayload(code, reason = '') {
  const out = Buffer.alloc(2 + Buffer.byteLength(reason));
  out.writeUInt16BE(code, 0);
  out.write(reason, 2);
  return out;
}

/** Parses one (server, unmasked) frame at the start of `buf`, or returns null. */
export function parseFrame(buf) {
  if (buf.length < 2) return null;
  const fin = (buf[0] & 0x80) !== 0;
  const rsv = (buf[0] >> 4) & 7;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let length = buf[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return null;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return null;
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  let key = null;
  if (masked) {
    if (buf.length < offset + 4) return null;
    key = buf.subarray(offset, offset + 4);
    offset += 4;
  }
  if (buf.length < offset + length) return null;
  let payload = Buffer.from(buf.subarray(offset, offset + length));
  if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  const frame = { fin, rsv, opcode, masked, payload };
  if (opcode === OP.CLOSE) {
    frame.code = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
    frame.reason = payload.subarray(2).toString('utf8');
  }
  return { frame, consumed: offset + length };
}

/**
 * A hand-driven WebSocket client: the handshake over TCP, then raw frames both ways.
 * `frames` is a Queue of the server's frames; nothing is answered automatically.
 */
export class RawWebSocket {
  static async connect(port, target, { headers = {}, timeoutMs = 5000 } = {}) {
    const client = await RawClient.connect(port, '127.0.0.1', { timeoutMs });
    const key = randomBytes(16).toString('base64');
    let head =
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    client.write(`${head}\r\n`);
    const response = await client.readResponse(timeoutMs);
    if (response.status !== 101) {
      client.destroy();
      throw new Error(`WebSocket handshake answered ${response.status}: ${response.body}`);
    }
    const expected = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    if (response.headers['sec-websocket-accept'] !== expected) {
      client.destroy();
      throw new Error(`bad Sec-WebSocket-Accept ${response.headers['sec-websocket-accept']}`);
    }
    return new RawWebSocket(client);
  }

  constructor(client) {
    this.client = client;
    this.frames = new Queue('WebSocket frames');
    const drain = () => {
      for (;;) {
        const parsed = parseFrame(client.buf);
        if (!parsed) break;
        client.buf = client.buf.subarray(parsed.consumed);
        this.frames.push(parsed.frame);
      }
    };
    client.socket.on('data', drain);
    drain();
    client.closed.then(() => this.frames.close('TCP connection closed'));
  }

  send(frame) {
    this.client.write(encodeFrame(frame));
  }

  sendBytes(bytes) {
    this.client.write(bytes);
  }

  sendText(text) {
    this.send({ opcode: OP.TEXT, payload: Buffer.from(text) });
  }

  /** The next frame (optionally the next one of `opcode`, skipping pings etc.). */
  nextFrame(timeoutMs = 5000, opcode = undefined) {
    return this.frames.take(timeoutMs, opcode === undefined ? null : (f) => f.opcode === opcode);
  }

  /** The next text frame's JSON. */
  async nextJson(timeoutMs = 5000) {
    const frame = await this.nextFrame(timeoutMs, OP.TEXT);
    return JSON.parse(frame.payload.toString('utf8'));
  }

  /** Waits for the server's close frame and then the TCP close; returns {code, reason}. */
  async expectClose(timeoutMs = 5000) {
    const frame = await this.nextFrame(timeoutMs, OP.CLOSE);
    await this.client.waitClosed(timeoutMs);
    return { code: frame.code, reason: frame.reason };
  }

  destroy() {
    this.client.destroy();
  }
}

// ---------------------------------------------------------------------------------
// A TCP proxy that can cut every connection, or hold new ones, on demand.

export class TcpProxy {
  static async start(targetPort, targetHost = '127.0.0.1') {
    const proxy = new TcpProxy(targetPort, targetHost);
    await new Promise((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', resolve);
    });
    proxy.port = proxy.server.address().port;
    return proxy;
  }

  constructor(targetPort, targetHost) {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.pairs = new Set();
    this.accepted = 0;
    this.acceptedQueue = new Queue('proxy connections');
    this.holding = false;
    this.held = [];
    // Every chunk sent from the server to a client, as latin1 text.
    this.downstream = new Queue('proxy downstream chunks');
    this.server = net.createServer((client) => this.#accept(client));
  }

  #accept(client) {
    this.accepted += 1;
    this.acceptedQueue.push(this.accepted);
    client.on('error', () => {});
    if (this.holding) {
      client.pause();
      this.held.push(client);
      client.once('close', () => {
        this.held = this.held.filter((c) => c !== client);
      });
      return;
    }
    this.#forward(client);
  }

  #forward(client) {
    const upstream = net.connect({ port: this.targetPort, host: this.targetHost });
    const pair = { client, upstream };
    this.pairs.add(pair);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      upstream.destroy();
      this.pairs.delete(pair);
    });
    upstream.on('close', () => {
      client.destroy();
      this.pairs.delete(pair);
    });
    upstream.on('data', (chunk) => this.downstream.push(chunk.toString('latin1')));
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  /** Waits until the server has sent `text` to a client through the proxy. */
  waitForDownstream(text, timeoutMs = 5000) {
    return this.downstream.waitFor((chunks) => chunks.join('').includes(text), timeoutMs, JSON.stringify(text));
  }

  /** New connections are accepted but not forwarded until release(). */
  hold() {
    this.holding = true;
  }

  release() {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const client of held) if (!client.destroyed) this.#forward(client);
  }

  /** Cuts every forwarded connection (both sides), as a network failure would. */
  dropAll() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  async close() {
    this.dropAll();
    for (const client of this.held) client.destroy();
    this.held = [];
    await new Promise((resolve) => this.server.close(resolve));
  }
}


/**
 * Sends `bytes`, half-closes the socket (shutdown of the sending side, as HTTP allows
 * once the requests are out) and resolves with everything received until the server closes.
 */
export function sendAndHalfClose(port, bytes, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    socket.setTimeout(timeoutMs, () => reject(new Error(`no close within ${timeoutMs} ms`)));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('connect', () => socket.end(bytes));
  });
}

// Private channels from the client's side (docs/protocol.md, "Private channels and
// authorization"), with the real transports over scripted fakes of XMLHttpRequest,
// WebSocket, EventSource, fetch and the DOM: the `token` option (string, function,
// Promise) on every request, refreshed at auth-expired; refusals reported as 'error'
// events naming the channel, never retried in a loop nor taken for a failing transport.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import { Comet, I } from './load.mjs';

// ---- fakes ----------------------------------------------------------------------

let requests = []; // every URL asked for, in order: [kind, url]

class FakeXHR {
  static all = [];
  constructor() {
    Object.assign(this, { readyState: 0, status: 0, responseText: '', withCredentials: false, aborted: false });
    FakeXHR.all.push(this);
  }
  open(method, url) {
    this.url = url;
    this.readyState = 1;
    requests.push(['xhr', url]);
  }
  send() {}
  abort() {
    this.aborted = true;
  }
  getResponseHeader() {
    return 'application/json';
  }
  fire() {
    this.onreadystatechange?.();
    this.onprogress?.();
  }
  /** A whole answer. */
  respond(status, body) {
    this.status = status;
    this.readyState = 2;
    this.fire();
    this.responseText = typeof body === 'string' ? body : JSON.stringify(body);
    this.readyState = 4;
    this.fire();
  }
  /** The start of a streamed 200 answer; push() adds to it. */
  stream(text) {
    this.status = 200;
    this.readyState = 2;
    this.fire();
    this.push(text);
  }
  push(text) {
    this.responseText += text;
    this.readyState = 3;
    this.fire();
  }
}

class FakeWebSocket {
  static all = [];
  constructor(url) {
    Object.assign(this, { url, readyState: 0, sent: [], closed: false });
    FakeWebSocket.all.push(this);
    requests.push(['ws', url]);
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.closed = true;
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

class FakeEventSource {
  static all = [];
  constructor(url, opts) {
    Object.assign(this, { url, opts, listeners: {}, closed: false });
    FakeEventSource.all.push(this);
    requests.push(['sse', url]);
  }
  addEventListener(name, fn) {
    (this.listeners[name] ??= []).push(fn);
  }
  close() {
    this.closed = true;
  }
  event(name, obj, lastEventId = '') {
    const e = { data: JSON.stringify(obj), lastEventId };
    if (name === 'message') this.onmessage?.(e);
    else for (const fn of this.listeners[name] ?? []) fn(e);
  }
}

/** fetch: the /healthz probe answers; streams (multipart, dom-event-stream) hang. */
function fakeFetch(url, init) {
  requests.push(['fetch', url, init]);
  if (/\/healthz$/.test(url)) return Promise.resolve({});
  return new Promise(() => {});
}

/** Just enough DOM for the iframe and JSONP transports: elements record their src. */
function fakeDocument() {
  const node = () => ({ appendChild(el) { el.parentNode = this; if (el.src) requests.push([el.tag, el.src]); }, removeChild() {} });
  const doc = {
    domain: 'page.test',
    body: node(),
    head: node(),
    elements: [],
    createElement(tag) {
      const el = { tag, style: {}, setAttribute() {} };
      doc.elements.push(el);
      return el;
    },
  };
  return doc;
}

// The iframe and JSONP transports drop their global callbacks 30 s after use (a late
// script may still call them): such timers must not keep this process alive.
const realSetTimeout = globalThis.setTimeout;
before(() => {
  globalThis.setTimeout = (fn, ms, ...args) => {
    const t = realSetTimeout(fn, ms, ...args);
    if (ms >= 30000) t.unref();
    return t;
  };
});
after(() => {
  globalThis.setTimeout = realSetTimeout;
});

const GLOBALS = { XMLHttpRequest: FakeXHR, WebSocket: FakeWebSocket, EventSource: FakeEventSource, fetch: fakeFetch };
const saved = {};
const conns = [];
beforeEach(() => {
  requests = [];
  FakeXHR.all = [];
  FakeWebSocket.all = [];
  FakeEventSource.all = [];
  for (const k of [...Object.keys(GLOBALS), 'document']) saved[k] = Object.getOwnPropertyDescriptor(globalThis, k);
  for (const [k, v] of Object.entries(GLOBALS)) Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
  Object.defineProperty(globalThis, 'document', { value: fakeDocument(), configurable: true, writable: true });
});
afterEach(() => {
  for (const c of conns.splice(0)) c.close();
  for (const [k, d] of Object.entries(saved)) {
    if (d) Object.defineProperty(globalThis, k, d);
    else delete globalThis[k];
  }
});

// ---- helpers --------------------------------------------------------------------

async function until(cond, what, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const param = (url, name) => new URL(url).searchParams.get(name);
const xhrs = (path) => FakeXHR.all.filter((x) => new URL(x.url).pathname === path);
const lastWs = () => FakeWebSocket.all.at(-1);
const lastEs = () => FakeEventSource.all.at(-1);
const msg = (ch, id, epoch = 'E') => ({ ch, id, prev: id - 1, epoch, data: `${ch}${id}` });
const refusal = (ch, status = 403) => ({ error: `not authorized for channel '${ch}': token does not cover it`, status, ch });

/** A solo connection (no tab sharing) recording what it reports. */
function connect(options, channels = ['a']) {
  const conn = Comet.connect('http://sidecar.test', {
    shareTabs: false,
    rememberTransport: false,
    backoff: { min: 5, max: 20, factor: 2, jitter: 0 },
    timeouts: { open: 2000, stall: 60000, poll: 60000, ping: 60000 },
    ...options,
  });
  conns.push(conn);
  const out = { conn, errors: [], auth: [], got: {} };
  conn.on('error', (e) => out.errors.push(e));
  conn.on('auth', (a) => out.auth.push(a));
  for (const ch of channels) {
    out.got[ch] = [];
    conn.subscribe(ch, (m) => out.got[ch].push(m.id));
  }
  return out;
}
const refusals = (c) => c.errors.filter((e) => e.channel).map((e) => [e.channel, e.status, e.code]);

// ---- the token on every request ---------------------------------------------------

describe('the token option', () => {
  // What each transport asks for once it is past the head lookup.
  const MAIN = {
    websocket: ([kind]) => kind === 'ws',
    sse: ([kind]) => kind === 'sse',
    'xhr-stream': ([kind, url]) => kind === 'xhr' && /\/stream/.test(url),
    multipart: ([kind, url]) => kind === 'fetch' && /\/stream/.test(url),
    'dom-event-stream': ([kind, url]) => kind === 'fetch' && /\/sse/.test(url),
    iframe: ([kind]) => kind === 'iframe',
    htmlfile: ([kind]) => kind === 'iframe',
    'long-poll': ([kind, url]) => kind === 'xhr' && /\/poll/.test(url),
    poll: ([kind, url]) => kind === 'xhr' && /\/poll/.test(url),
    jsonp: ([kind]) => kind === 'script',
  };
  const STREAMS = ['sse', 'xhr-stream', 'multipart', 'dom-event-stream', 'iframe', 'htmlfile'];
  for (const name of Object.keys(MAIN)) {
    test(`${name}: token= on every request, the head lookup included`, async () => {
      connect({ transports: [name], token: 'T.1' }, ['a', 'private:b']);
      if (STREAMS.includes(name)) {
        // Streams first look up where new channels start (/poll?wait=0).
        await until(() => xhrs('/poll').length === 1, 'the head lookup');
        xhrs('/poll')[0].respond(200, { cursor: 'a@E.0,private:b@F.0', messages: [] });
      }
      await until(() => requests.some(MAIN[name]), `the ${name} request`);
      const asked = requests.filter(([, url]) => !/\/healthz$/.test(url));
      assert.equal(asked.length, STREAMS.includes(name) ? 2 : 1, JSON.stringify(asked));
      for (const [kind, url] of asked) {
        const u = new URL(url.replace(/^ws/, 'http'));
        assert.equal(u.searchParams.get('token'), 'T.1', `${kind} ${url}`);
        assert.equal(u.searchParams.get('ch'), 'a,private:b', `${kind} ${url}`);
      }
    });
  }

  test('a function is called for every connection; a Promise works; the reconnect carries the new token and the cursor', async () => {
    let n = 0;
    const c = connect({ transports: ['websocket'], token: () => Promise.resolve(`T${++n}`) });
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    assert.equal(param(lastWs().url.replace(/^ws/, 'http'), 'token'), 'T1');
    lastWs().open();
    lastWs().receive({ type: 'subscribed', ch: 'a', epoch: 'E', id: 4 });
    lastWs().receive(msg('a', 5));
    lastWs().drop();
    await until(() => FakeWebSocket.all.length === 2, 'the reconnect');
    const url = new URL(lastWs().url.replace(/^ws/, 'http'));
    assert.equal(url.searchParams.get('token'), 'T2');
    assert.equal(url.searchParams.get('cursor'), 'a@E.5');
    assert.equal(n, 2);
    assert.deepEqual(c.got.a, [5]);
  });

  test('a plain function (no Promise), and none: no token= at all', async () => {
    connect({ transports: ['long-poll'], token: () => 'sync' });
    await until(() => xhrs('/poll').length === 1, 'the poll');
    assert.equal(param(xhrs('/poll')[0].url, 'token'), 'sync');
    connect({ transports: ['long-poll'], token: () => null });
    await until(() => xhrs('/poll').length === 2, 'the second poll');
    assert.equal(param(xhrs('/poll')[1].url, 'token'), null);
  });

  test('a function that throws or rejects: an error event, retried with backoff (not in a loop)', async () => {
    let calls = 0;
    const c = connect({
      transports: ['long-poll'],
      backoff: { min: 40, max: 40, factor: 1, jitter: 0 },
      token: () => {
        calls += 1;
        if (calls === 1) throw new Error('app down');
        if (calls === 2) return Promise.reject(new Error('401 from the app'));
        return 'ok';
      },
    });
    await until(() => xhrs('/poll').length === 1, 'the poll once a token came', 3000);
    assert.equal(calls, 3);
    assert.deepEqual(c.errors.map((e) => [e.code, e.message]), [
      ['token', 'comet: the token function failed: app down'],
      ['token', 'comet: the token function failed: 401 from the app'],
    ]);
    assert.equal(param(xhrs('/poll')[0].url, 'token'), 'ok');
  });

  test('withCredentials: XHR, fetch and EventSource send cookies across origins', async () => {
    connect({ transports: ['sse'], withCredentials: true });
    await until(() => xhrs('/poll').length === 1, 'the head lookup');
    assert.equal(xhrs('/poll')[0].withCredentials, true);
    xhrs('/poll')[0].respond(200, { cursor: 'a@E.0', messages: [] });
    await until(() => FakeEventSource.all.length === 1, 'the EventSource');
    assert.deepEqual(lastEs().opts, { withCredentials: true });
    connect({ transports: ['multipart'], withCredentials: true, token: 'x' }, ['b']);
    await until(() => xhrs('/poll').length === 2, 'the head lookup');
    xhrs('/poll')[1].respond(200, { cursor: 'b@E.0', messages: [] });
    await until(() => requests.some(([kind, url]) => kind === 'fetch' && /\/stream/.test(url)), 'the fetch');
    assert.equal(requests.find(([kind, url]) => kind === 'fetch' && /\/stream/.test(url))[2].credentials, 'include');
  });
});

// ---- expiry ---------------------------------------------------------------------

describe('auth-expired', () => {
  test('WebSocket: a fresh token goes in {"cmd":"auth"}; the answer is an auth event', async () => {
    let n = 0;
    const c = connect({ transports: ['websocket'], token: async () => `T${++n}` }, ['private:a']);
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    const ws = lastWs();
    ws.open();
    ws.receive({ type: 'auth-expired', grace: 30 });
    await until(() => ws.sent.some((o) => o.cmd === 'auth'), 'the auth command');
    assert.deepEqual(ws.sent.filter((o) => o.cmd === 'auth'), [{ cmd: 'auth', token: 'T2' }]);
    ws.receive({ type: 'auth', exp: 1700000600, sub: '7' });
    assert.deepEqual(c.auth, [{ type: 'auth-expired', grace: 30 }, { type: 'auth', exp: 1700000600, sub: '7' }]);
    assert.equal(FakeWebSocket.all.length, 1, 'the socket stays');
    assert.equal(c.errors.length, 0);
  });

  test('WebSocket without a token option (cookies, --auth-url): {"cmd":"auth"}', async () => {
    connect({ transports: ['websocket'] }, ['private:a']);
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    lastWs().open();
    lastWs().receive({ type: 'auth-expired', grace: 30 });
    await until(() => lastWs().sent.some((o) => o.cmd === 'auth'), 'the auth command');
    assert.deepEqual(lastWs().sent.filter((o) => o.cmd === 'auth'), [{ cmd: 'auth' }]);
  });

  test('WebSocket with a string token: nothing to refresh; the auth event lets the app call reauthorize(token)', async () => {
    const c = connect({ transports: ['websocket'], token: 'old' }, ['private:a']);
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    const ws = lastWs();
    ws.open();
    ws.receive({ type: 'auth-expired', grace: 30 });
    await sleep(20);
    assert.deepEqual(ws.sent.filter((o) => o.cmd === 'auth'), []);
    assert.deepEqual(c.auth, [{ type: 'auth-expired', grace: 30 }]);
    c.conn.reauthorize('new');
    await until(() => ws.sent.some((o) => o.cmd === 'auth'), 'the auth command');
    assert.deepEqual(ws.sent.filter((o) => o.cmd === 'auth'), [{ cmd: 'auth', token: 'new' }]);
  });

  test('SSE (comet-auth-expired): reconnects from its cursor with the new token', async () => {
    let n = 0;
    const c = connect({ transports: ['sse'], token: () => `T${++n}` }, ['private:a']);
    await until(() => xhrs('/poll').length === 1, 'the head lookup');
    xhrs('/poll')[0].respond(200, { cursor: 'private:a@E.0', messages: [] });
    await until(() => FakeEventSource.all.length === 1, 'the EventSource');
    const es = lastEs();
    es.onopen();
    es.event('message', msg('private:a', 1), 'private:a@E.1');
    es.event('comet-auth-expired', { type: 'auth-expired', grace: 30 }, 'private:a@E.1');
    await until(() => FakeEventSource.all.length === 2, 'the reconnect');
    assert.ok(es.closed);
    const url = new URL(lastEs().url);
    assert.equal(url.searchParams.get('token'), 'T2');
    assert.equal(url.searchParams.get('cursor'), 'private:a@E.1');
    assert.equal(n, 2, 'the token fetched for the refresh is the one used');
    assert.deepEqual(c.got['private:a'], [1]);
    assert.deepEqual(c.auth, [{ type: 'auth-expired', grace: 30 }]);
  });

  test('xhr-stream (the object in the stream): reconnects from its cursor with the new token', async () => {
    let n = 0;
    connect({ transports: ['xhr-stream'], token: async () => `T${++n}` }, ['private:a']);
    await until(() => xhrs('/poll').length === 1, 'the head lookup');
    xhrs('/poll')[0].respond(200, { cursor: 'private:a@E.3', messages: [] });
    await until(() => xhrs('/stream').length === 1, 'the stream');
    const s = xhrs('/stream')[0];
    s.stream(' '.repeat(64) + '\n' + JSON.stringify({ type: 'open', cursor: 'private:a@E.3' }) + '\n');
    s.push(JSON.stringify(msg('private:a', 4)) + '\n' + JSON.stringify({ type: 'auth-expired', grace: 30 }) + '\n');
    await until(() => xhrs('/stream').length === 2, 'the reconnect');
    assert.ok(s.aborted);
    assert.equal(param(xhrs('/stream')[1].url, 'token'), 'T2');
    assert.equal(param(xhrs('/stream')[1].url, 'cursor'), 'private:a@E.4');
  });

  test('WebSocket: a channel ended by auth-expired is subscribed again, from its cursor, once a fresh token comes', async () => {
    let n = 0;
    let fail = false;
    const c = connect({ transports: ['websocket'], token: () => (fail ? Promise.reject(new Error('app down')) : `T${++n}`) }, ['a', 'private:b']);
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    const ws = lastWs();
    ws.open();
    ws.receive({ type: 'subscribed', ch: 'private:b', epoch: 'E', id: 0 });
    ws.receive(msg('private:b', 1));
    fail = true; // the refresh fails; the grace period ends
    ws.receive({ type: 'auth-expired', grace: 30 });
    await until(() => c.errors.length >= 1, 'the token error');
    ws.receive({ type: 'error', error: 'auth-expired', ch: 'private:b', status: 403, message: 'authorization expired' });
    assert.deepEqual(refusals(c), [['private:b', 403, 'auth-expired']]);
    fail = false; // the refresh retried with backoff now succeeds
    await until(() => ws.sent.some((o) => o.cmd === 'sub'), 'the re-subscription');
    const cmds = ws.sent.filter((o) => o.cmd !== 'ping');
    assert.deepEqual(cmds, [{ cmd: 'auth', token: 'T2' }, { cmd: 'sub', ch: 'private:b', since: 'E.1' }]);
    assert.equal(FakeWebSocket.all.length, 1);
  });

  test('WebSocket: a channel ended by auth-expired comes back, from its cursor, with the next connection that calls the function', async () => {
    let n = 0;
    const c = connect({ transports: ['websocket'], token: () => `T${++n}`, authRetry: 0 }, ['a', 'private:b']);
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    lastWs().open();
    lastWs().receive({ type: 'subscribed', ch: 'private:b', epoch: 'E', id: 6 });
    lastWs().receive({ type: 'error', error: 'auth-expired', ch: 'private:b', status: 403, message: 'authorization expired' });
    assert.deepEqual(refusals(c), [['private:b', 403, 'auth-expired']]);
    lastWs().drop();
    await until(() => FakeWebSocket.all.length === 2, 'the reconnect');
    const url = new URL(lastWs().url.replace(/^ws/, 'http'));
    assert.deepEqual([url.searchParams.get('ch'), url.searchParams.get('cursor'), url.searchParams.get('token')], ['a,private:b', 'private:b@E.6', 'T2']);
  });
});

// ---- refusals -------------------------------------------------------------------

describe('a channel the sidecar cannot read now (503)', () => {
  test('WebSocket: an unavailable channel is an error event, not a refusal: asked for again on the same socket', async () => {
    const c = connect({ transports: ['websocket'] }, ['a', 'b']);
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    const ws = lastWs();
    ws.open();
    ws.receive({ type: 'subscribed', ch: 'a', epoch: 'E', id: 0 });
    ws.receive({ type: 'error', error: 'unavailable', ch: 'b', status: 503, message: 'the message store cannot be reached' });
    assert.equal(c.errors.length, 1);
    assert.equal(c.errors[0].channel, 'b');
    assert.equal(c.errors[0].status, 503);
    ws.receive(msg('a', 1));
    assert.deepEqual(c.got.a, [1], 'the other channels go on');
    await until(() => ws.sent.some((o) => o.cmd === 'sub'), 'the channel asked for again', 5000);
    assert.deepEqual(ws.sent.filter((o) => o.cmd === 'sub'), [{ cmd: 'sub', ch: ['b'] }]);
    assert.equal(FakeWebSocket.all.length, 1, 'on the same socket');
    ws.receive({ type: 'subscribed', ch: 'b', epoch: 'E', id: 0 });
    ws.receive(msg('b', 1));
    assert.deepEqual(c.got.b, [1]);
  });
});

describe('refused channels', () => {
  test('WebSocket: a per-channel forbidden is an error event; the channel is not asked for again until reauthorize()', async () => {
    const c = connect({ transports: ['websocket'], token: 'T', authRetry: 0 }, ['a', 'private:x']);
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    const ws = lastWs();
    ws.open();
    ws.receive({ type: 'subscribed', ch: 'a', epoch: 'E', id: 0 });
    ws.receive({ type: 'error', error: 'forbidden', ch: 'private:x', status: 403, message: 'token does not cover it' });
    assert.deepEqual(refusals(c), [['private:x', 403, 'forbidden']]);
    assert.equal(c.errors[0].message, 'token does not cover it');
    ws.receive(msg('a', 1));
    assert.deepEqual(c.got.a, [1], 'the other channels go on');
    // A reconnect leaves it out too.
    ws.drop();
    await until(() => FakeWebSocket.all.length === 2, 'the reconnect');
    assert.equal(param(lastWs().url.replace(/^ws/, 'http'), 'ch'), 'a');
    lastWs().open();
    await sleep(30);
    assert.deepEqual(lastWs().sent.filter((o) => o.cmd === 'sub'), [], 'no re-subscription');
    assert.equal(c.errors.length, 2, 'the refusal and the drop, nothing more');
    // The app gives a new token: auth, then the channel again.
    c.conn.reauthorize('T2');
    await until(() => lastWs().sent.some((o) => o.cmd === 'sub'), 'the re-subscription');
    assert.deepEqual(lastWs().sent.filter((o) => o.cmd !== 'ping'), [{ cmd: 'auth', token: 'T2' }, { cmd: 'sub', ch: ['private:x'] }]);
  });

  test('WebSocket: unauthorized on the only channel: idle, no reconnect loop; subscribing again tries once more', async () => {
    const c = connect({ transports: ['websocket'], authRetry: 0 }, ['private:x']);
    await until(() => FakeWebSocket.all.length === 1, 'the socket');
    lastWs().open();
    lastWs().receive({ type: 'error', error: 'unauthorized', ch: 'private:x', status: 401, message: 'no credentials' });
    await until(() => c.conn.state === 'idle', 'idle');
    assert.deepEqual(refusals(c), [['private:x', 401, 'unauthorized']]);
    await sleep(50);
    assert.equal(FakeWebSocket.all.length, 1);
    c.conn.subscribe('private:x', () => {});
    await until(() => FakeWebSocket.all.length === 2, 'another try');
    assert.equal(param(lastWs().url.replace(/^ws/, 'http'), 'ch'), 'private:x');
  });

  for (const name of ['long-poll', 'xhr-stream', 'multipart']) {
    test(`${name}: HTTP 403 naming a channel → error event, the others go on at once on the same transport`, async () => {
      const real = globalThis.fetch;
      if (name === 'multipart') {
        // fetch-based: answer the refused stream request with the error body.
        globalThis.fetch = (url, init) => {
          requests.push(['fetch', url, init]);
          if (/\/healthz$/.test(url)) return Promise.resolve({});
          if (/private/.test(url)) return Promise.resolve({ status: 403, text: () => Promise.resolve(JSON.stringify(refusal('private:x'))) });
          return new Promise(() => {});
        };
      }
      try {
        const c = connect({ transports: [name, 'jsonp'], token: 'T', authRetry: 0 }, ['a', 'private:x']);
        c.conn.subscribe('b', () => {}, { since: 'E.9' }); // a known position: no head lookup for it
        await until(() => xhrs('/poll').length === 1, 'the first request');
        const first = xhrs('/poll')[0];
        if (name === 'long-poll') first.respond(403, refusal('private:x'));
        else {
          first.respond(200, { cursor: 'a@E.0,private:x@F.0', messages: [] });
          if (name === 'xhr-stream') {
            await until(() => xhrs('/stream').length === 1, 'the stream');
            xhrs('/stream')[0].respond(403, refusal('private:x'));
          }
        }
        await until(() => c.errors.length === 1, 'the error event');
        assert.deepEqual(refusals(c), [['private:x', 403, 'forbidden']]);
        assert.match(c.errors[0].message, /not authorized for channel 'private:x'/);
        // Again at once, without it, on the same transport.
        const path = name === 'long-poll' ? '/poll' : '/stream';
        const isNext = ([kind, url]) => new URL(url).pathname === path && param(url, 'ch') === 'a,b';
        await until(() => requests.some(isNext), 'the request without the refused channel');
        assert.equal(param(requests.find(isNext)[1], 'cursor'), name === 'long-poll' ? 'b@E.9' : 'a@E.0,b@E.9');
        await sleep(50);
        assert.equal(globalThis.document.elements.length, 0, 'no fallback to JSONP');
        assert.equal(requests.filter(([, url]) => /private/.test(url)).length, name === 'long-poll' ? 1 : 2, 'not asked for again');
        assert.equal(c.errors.length, 1);
      } finally {
        globalThis.fetch = real;
      }
    });
  }

  test('SSE refused before open: one /poll?wait=0 tells why; an error event; no transport fallback', async () => {
    const c = connect({ transports: ['sse', 'xhr-stream', 'long-poll'], token: 'T', authRetry: 0 }, []);
    c.conn.subscribe('a', () => {}, { since: 'E.1' });
    c.conn.subscribe('private:x', () => {}, { since: 'F.2' });
    await until(() => FakeEventSource.all.length === 1, 'the EventSource (positions known: no head lookup)');
    lastEs().onerror(); // EventSource hides the 403
    await until(() => xhrs('/poll').length === 1, 'the status check');
    const check = xhrs('/poll')[0];
    assert.deepEqual(Object.fromEntries(new URL(check.url).searchParams), { ch: 'a,private:x', cursor: 'a@E.1,private:x@F.2', wait: '0', token: 'T' });
    check.respond(403, refusal('private:x'));
    await until(() => FakeEventSource.all.length === 2, 'SSE again without it');
    assert.deepEqual(refusals(c), [['private:x', 403, 'forbidden']]);
    assert.equal(param(lastEs().url, 'ch'), 'a');
    assert.equal(xhrs('/stream').length, 0, 'no fallback');
    lastEs().onopen();
    assert.equal(c.conn.state, 'open');
    assert.equal(c.conn.transport, 'sse');
  });

  test('SSE failing for another reason still falls back (the check answers 200)', async () => {
    const c = connect({ transports: ['sse', 'long-poll'], authRetry: 0 }, []);
    c.conn.subscribe('a', () => {}, { since: 'E.1' });
    await until(() => FakeEventSource.all.length === 1, 'the EventSource');
    lastEs().onerror();
    await until(() => xhrs('/poll').length === 1, 'the status check');
    xhrs('/poll')[0].respond(200, { cursor: 'a@E.1', messages: [] });
    await until(() => xhrs('/poll').length >= 2, 'the fallback to long-poll');
    assert.equal(FakeEventSource.all.length, 1);
    assert.deepEqual(refusals(c), []);
  });

  test('a refusal at the head lookup (a new channel) is reported without opening the stream', async () => {
    const c = connect({ transports: ['sse', 'long-poll'], authRetry: 0 }, ['private:x']);
    await until(() => xhrs('/poll').length === 1, 'the head lookup');
    xhrs('/poll')[0].respond(401, { error: "no credentials for channel 'private:x'", status: 401, ch: 'private:x' });
    await until(() => c.conn.state === 'idle', 'idle: nothing else to ask for');
    assert.deepEqual(refusals(c), [['private:x', 401, 'unauthorized']]);
    await sleep(50);
    assert.equal(FakeEventSource.all.length, 0);
    assert.equal(xhrs('/poll').length, 1, 'no fallback, no loop');
  });

  test('iframe refused cross-origin (body unreadable): the status check names the channel', async () => {
    const c = connect({ transports: ['iframe', 'long-poll'], authRetry: 0 }, []);
    c.conn.subscribe('private:x', () => {}, { since: 'F.2' });
    await until(() => globalThis.document.elements.length === 1, 'the iframe');
    const frame = globalThis.document.elements[0];
    Object.defineProperty(frame, 'contentWindow', { get: () => { throw new Error('cross-origin'); } });
    frame.onload();
    await until(() => xhrs('/poll').length === 1, 'the status check');
    xhrs('/poll')[0].respond(403, refusal('private:x'));
    await until(() => c.errors.some((e) => e.channel), 'the refusal');
    assert.deepEqual(refusals(c), [['private:x', 403, 'forbidden']]);
    await sleep(30);
    assert.equal(xhrs('/poll').length, 1, 'no fallback to long-poll');
  });

  test('authRetry: a refused channel is tried again after that long, not before', async () => {
    const c = connect({ transports: ['long-poll'], authRetry: 150 }, ['a', 'private:x']);
    await until(() => xhrs('/poll').length === 1, 'the first poll');
    const t0 = Date.now();
    xhrs('/poll')[0].respond(403, refusal('private:x'));
    await until(() => xhrs('/poll').length === 2, 'the poll without it');
    assert.equal(param(xhrs('/poll')[1].url, 'ch'), 'a');
    xhrs('/poll')[1].respond(200, { cursor: 'a@E.0', messages: [] });
    await until(() => requests.filter(([, url]) => /private/.test(url)).length === 2, 'the retry', 2000);
    assert.ok(Date.now() - t0 >= 140, `retried after ${Date.now() - t0} ms`);
    assert.equal(param(xhrs('/poll').at(-1).url, 'ch'), 'a,private:x');
    xhrs('/poll').at(-1).respond(403, refusal('private:x'));
    await until(() => c.errors.length === 2, 'the second refusal, reported too');
    assert.deepEqual(refusals(c), [['private:x', 403, 'forbidden'], ['private:x', 403, 'forbidden']]);
  });

  test('long-poll with a function token that worked: a 403 (expired) gets one fresh token, then counts', async () => {
    let n = 0;
    const c = connect({ transports: ['long-poll'], token: () => `T${++n}`, authRetry: 0 }, ['private:x']);
    await until(() => xhrs('/poll').length === 1, 'the first poll');
    xhrs('/poll')[0].respond(200, { cursor: 'private:x@E.0', messages: [] });
    await until(() => xhrs('/poll').length === 2, 'the held poll');
    xhrs('/poll')[1].respond(403, refusal('private:x'));
    await until(() => xhrs('/poll').length === 3, 'a fresh token');
    assert.equal(param(xhrs('/poll')[2].url, 'token'), 'T2');
    assert.equal(param(xhrs('/poll')[2].url, 'cursor'), 'private:x@E.0');
    assert.equal(c.errors.length, 0, 'an expired token is no refusal');
    xhrs('/poll')[2].respond(403, refusal('private:x'));
    await until(() => c.errors.length === 1, 'the refusal');
    assert.deepEqual(refusals(c), [['private:x', 403, 'forbidden']]);
    await sleep(30);
    assert.equal(xhrs('/poll').length, 3, 'nothing else to ask for: no request');
  });

  test('a 403 without a channel (origin, transport disabled) is a transport failure: fall back', async () => {
    const c = connect({ transports: ['xhr-stream', 'long-poll'], authRetry: 0 }, []);
    c.conn.subscribe('a', () => {}, { since: 'E.1' });
    await until(() => xhrs('/stream').length === 1, 'the stream');
    xhrs('/stream')[0].respond(403, { error: 'transport disabled', status: 403 });
    await until(() => xhrs('/poll').length === 1, 'the fallback');
    assert.deepEqual(refusals(c), []);
    assert.equal(c.errors[0].status, 403);
  });
});

// The Driver (session.js) with scripted fake transports: cursor bookkeeping across
// reconnects and transport changes, dedup, gap resync, resets, the fallback ladder
// (open timeout, reachability probe), graceful stream ends and rewinds.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';

import { I } from './load.mjs';

/** Every fake transport started, in order: {name, channels, cursor, ctx, stopped}. */
let started = [];
let reachable = true;
const realFetch = globalThis.fetch;

function fake(name) {
  return {
    available: () => true,
    create(ctx) {
      const t = {
        name,
        ctx,
        stopped: false,
        updates: 0,
        start() {
          t.channels = ctx.channels().slice();
          t.cursor = ctx.cursor();
          started.push(t);
        },
        stop() {
          t.stopped = true;
        },
        update() {
          t.updates += 1;
          return name === 'fake-ws'; // like WebSocket: subscribe in place
        },
      };
      return t;
    },
  };
}

beforeEach(() => {
  started = [];
  reachable = true;
  for (const n of ['fake-a', 'fake-b', 'fake-ws']) I.TRANSPORTS[n] = fake(n);
  // The reachability probe is a no-cors fetch of /healthz.
  globalThis.fetch = () => (reachable ? Promise.resolve({}) : Promise.reject(new TypeError('refused')));
});
afterEach(() => {
  for (const n of ['fake-a', 'fake-b', 'fake-ws']) delete I.TRANSPORTS[n];
  globalThis.fetch = realFetch;
});

async function until(cond, what, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function makeDriver({ transports = ['fake-a', 'fake-b'], channels = ['a', 'b'], open = 200 } = {}) {
  const out = { delivered: [], heads: [], states: [], errors: [], channels };
  const options = {
    transports,
    timeouts: { open, stall: 10000, poll: 1000, ping: 1000 },
    backoff: { min: 5, max: 20, factor: 2, jitter: 0 },
    rememberTransport: false,
  };
  out.driver = new I.Driver('http://sidecar.test', options, {
    channels: () => out.channels,
    deliver: (o) => {
      out.delivered.push(o);
      out.onDeliver?.(o);
    },
    head: (ch, p) => out.heads.push([ch, I.formatPosition(p)]),
    state: (s) => out.states.push(`${s.state}${s.transport ? ':' + s.transport : ''}`),
    error: (e) => out.errors.push(e.message),
    log: () => {},
  });
  return out;
}

const msg = (ch, id, epoch = 'E') => ({ ch, id, prev: id - 1, epoch, data: `${ch}${id}` });
const ids = (list, ch) => list.filter((o) => o.ch === ch && o.id !== undefined && o.type === undefined).map((o) => o.id);

test('resumes from the per-channel cursor after a drop, delivering each message once', async () => {
  const d = makeDriver();
  d.driver.start();
  const t1 = started[0];
  assert.equal(t1.name, 'fake-a');
  assert.equal(t1.cursor, '', 'a new subscription starts at the head');
  t1.ctx.opened();
  t1.ctx.object({ type: 'open', cursor: 'a@E.0,b@.0' });
  assert.deepEqual(d.heads, [['a', 'E.0'], ['b', '.0']]);
  for (const id of [1, 2, 3]) t1.ctx.object(msg('a', id));
  t1.ctx.object(msg('b', 1, 'F'));
  t1.ctx.closed(new Error('dropped'), false);
  await until(() => started.length === 2, 'the reconnect');
  const t2 = started[1];
  assert.equal(t2.name, 'fake-a', 'a transport that worked is kept');
  assert.equal(t2.cursor, 'a@E.3,b@F.1');
  t2.ctx.opened();
  for (const id of [2, 3, 4, 5]) t2.ctx.object(msg('a', id)); // overlapping replay
  t2.ctx.object(msg('b', 1, 'F'));
  t2.ctx.object(msg('b', 2, 'F'));
  assert.deepEqual(ids(d.delivered, 'a'), [1, 2, 3, 4, 5]);
  assert.deepEqual(ids(d.delivered, 'b'), [1, 2]);
  assert.ok(t1.stopped);
  assert.equal(d.driver.state, 'open');
  assert.ok(d.states.includes('reconnecting'));
  d.driver.stop();
  assert.equal(d.driver.state, 'closed');
});

test('a gap is never delivered: the transport restarts from the last position', async () => {
  const d = makeDriver();
  d.driver.start();
  const t1 = started[0];
  t1.ctx.opened();
  t1.ctx.object({ type: 'open', cursor: 'a@E.0,b@E.0' });
  t1.ctx.object(msg('a', 1));
  assert.equal(t1.ctx.object(msg('a', 3)), false, 'reading stops at the gap');
  assert.equal(t1.ctx.object(msg('a', 4)), false, 'the old transport is superseded');
  await until(() => started.length === 2, 'the resync');
  assert.equal(started[1].cursor, 'a@E.1,b@E.0');
  started[1].ctx.opened();
  for (const id of [2, 3, 4]) started[1].ctx.object(msg('a', id));
  assert.deepEqual(ids(d.delivered, 'a'), [1, 2, 3, 4]);
  d.driver.stop();
});

test('a poll batch: messages then the answer cursor; a gap stops the batch', async () => {
  const d = makeDriver();
  d.driver.start();
  const t1 = started[0];
  t1.ctx.opened();
  assert.equal(t1.ctx.batch([], 'a@E.10,b@.0'), true);
  assert.equal(t1.ctx.batch([msg('a', 11), msg('a', 12)], 'a@E.12,b@.0'), true);
  assert.equal(t1.ctx.batch([msg('a', 13), msg('a', 15), msg('a', 16)], 'a@E.16,b@.0'), false);
  assert.deepEqual(ids(d.delivered, 'a'), [11, 12, 13]);
  await until(() => started.length === 2, 'the resync');
  assert.equal(started[1].cursor, 'a@E.13,b@.0', 'the answer cursor of a broken batch is not taken');
  d.driver.stop();
});

test('a rewind asked while a batch is handled is not undone by the batch cursor', async () => {
  const d = makeDriver();
  d.driver.start();
  const t1 = started[0];
  t1.ctx.opened();
  t1.ctx.batch([msg('a', 1)], 'a@E.1,b@E.0');
  // The answer's cursor moves past a@2 without it (a server withholding it): a tab
  // still at a@1 sees a@3 as a gap and asks to resume from a@1.
  t1.ctx.batch([], 'a@E.2,b@E.0');
  d.onDeliver = (o) => o.id === 3 && d.driver.rewind('a', { epoch: 'E', id: 1 });
  t1.ctx.batch([msg('a', 3)], 'a@E.3,b@E.0');
  await until(() => started.length === 2, 'the resync');
  assert.equal(started[1].cursor, 'a@E.1,b@E.0');
  d.driver.stop();
});

test('reset notices move the cursor and are passed on', async () => {
  const d = makeDriver();
  d.driver.start();
  const t1 = started[0];
  t1.ctx.opened();
  t1.ctx.object({ type: 'open', cursor: 'a@E.5,b@.0' });
  const reset = { type: 'reset', ch: 'a', reason: 'history-expired', epoch: 'E', id: 40 };
  t1.ctx.object(reset);
  t1.ctx.object(msg('a', 41));
  assert.deepEqual(d.delivered, [reset, msg('a', 41)]);
  t1.ctx.closed(new Error('x'), false);
  await until(() => started.length === 2, 'the reconnect');
  assert.equal(started[1].cursor, 'a@E.41,b@.0');
  d.driver.stop();
});

test('a planned end (byte budget: reconnect notice) restarts at once from its cursor', async () => {
  const d = makeDriver();
  d.driver.start();
  const t1 = started[0];
  t1.ctx.opened();
  t1.ctx.object({ type: 'open', cursor: 'a@E.0,b@.0' });
  t1.ctx.object(msg('a', 1));
  t1.ctx.object({ type: 'reconnect', cursor: 'a@E.1,b@.0' });
  t1.ctx.closed(null, true);
  assert.equal(started.length, 2, 'no backoff');
  assert.equal(started[1].cursor, 'a@E.1,b@.0');
  assert.ok(!d.states.includes('reconnecting'), `a planned restart keeps the state: ${d.states}`);
  d.driver.stop();
});

test('fallback: a transport that does not open in time while the sidecar answers → next one', async () => {
  const d = makeDriver({ open: 30 });
  d.driver.start();
  assert.equal(started[0].name, 'fake-a');
  await until(() => started.length === 2, 'the fallback');
  assert.equal(started[1].name, 'fake-b');
  assert.ok(started[0].stopped);
  assert.match(d.errors[0], /fake-a: nothing within 30 ms/);
  started[1].ctx.opened();
  assert.equal(d.driver.state, 'open');
  assert.equal(d.states.at(-1), 'open:fake-b');
  d.driver.stop();
});

test('fallback: refused (closed before opening) → next one at once', async () => {
  const d = makeDriver();
  d.driver.start();
  started[0].ctx.closed(new Error('WebSocket closed (1006)'), false);
  await until(() => started.length === 2, 'the fallback');
  assert.equal(started[1].name, 'fake-b');
  d.driver.stop();
});

test('sidecar unreachable: the transport is kept and retried with backoff', async () => {
  const d = makeDriver();
  reachable = false;
  d.driver.start();
  started[0].ctx.closed(new Error('refused'), false);
  await until(() => started.length === 3, 'two retries');
  assert.deepEqual(started.map((t) => t.name), ['fake-a', 'fake-a', 'fake-a']);
  reachable = true;
  started[2].ctx.closed(new Error('refused'), false);
  await until(() => started.length === 4, 'the fallback');
  assert.equal(started[3].name, 'fake-b');
  d.driver.stop();
});

test('every transport failed: the ladder starts again from the top after a pause', async () => {
  const d = makeDriver();
  d.driver.start();
  started[0].ctx.closed(new Error('no'), false);
  await until(() => started.length === 2, 'fake-b');
  started[1].ctx.closed(new Error('no'), false);
  await until(() => started.length === 3, 'the top again');
  assert.deepEqual(started.map((t) => t.name), ['fake-a', 'fake-b', 'fake-a']);
  d.driver.stop();
});

test('channel changes: subscribed in place (WebSocket) or restarted with the cursor', async () => {
  const ws = makeDriver({ transports: ['fake-ws'] });
  ws.driver.start();
  started[0].ctx.opened();
  ws.channels = ['a', 'b', 'c'];
  ws.driver.channelsChanged();
  assert.equal(started[0].updates, 1);
  assert.equal(started.length, 1);
  ws.driver.stop();

  started = [];
  const d = makeDriver();
  d.driver.start();
  started[0].ctx.opened();
  started[0].ctx.object({ type: 'open', cursor: 'a@E.4,b@E.7' });
  d.channels = ['b', 'c'];
  d.driver.channelsChanged();
  await until(() => started.length === 2, 'the restart');
  assert.deepEqual(started[1].channels, ['b', 'c']);
  assert.equal(started[1].cursor, 'b@E.7', 'c starts at the head; a is forgotten');
  // Nothing wanted: no connection at all.
  d.channels = [];
  d.driver.channelsChanged();
  assert.equal(d.driver.state, 'idle');
  assert.ok(started[1].stopped);
  d.driver.stop();
});

test('rewind (a tab behind the leader): moves the cursor back and restarts; never forward', async () => {
  const d = makeDriver();
  d.driver.start();
  started[0].ctx.opened();
  started[0].ctx.object({ type: 'open', cursor: 'a@E.50,b@.0' });
  d.driver.rewind('a', { epoch: 'E', id: 60 });
  d.driver.rewind('a', { epoch: 'X', id: 1 });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(started.length, 1, 'ahead or another epoch: ignored');
  d.driver.rewind('a', { epoch: 'E', id: 42 });
  await until(() => started.length === 2, 'the restart');
  assert.equal(started[1].cursor, 'a@E.42,b@.0');
  started[1].ctx.opened();
  for (let id = 43; id <= 51; id++) started[1].ctx.object(msg('a', id));
  assert.deepEqual(ids(d.delivered, 'a'), [43, 44, 45, 46, 47, 48, 49, 50, 51], 'the leader passes the replay on (tabs dedup)');
  d.driver.stop();
});

test('stall: no byte within the window → reconnect', async () => {
  const d = makeDriver();
  d.driver.options.timeouts.stall = 30;
  d.driver.start();
  started[0].ctx.opened();
  await until(() => started.length === 2, 'the reconnect after a stall', 3000);
  assert.equal(started[1].name, 'fake-a');
  assert.ok(d.errors.some((e) => /no heartbeat for 30 ms/.test(e)));
  d.driver.stop();
});

test('messages of channels no longer wanted are dropped; bare messages pass', async () => {
  const d = makeDriver({ channels: ['a'] });
  d.driver.start();
  started[0].ctx.opened();
  started[0].ctx.object(msg('z', 1));
  started[0].ctx.object({ ch: 'a', data: 'bare' });
  assert.deepEqual(d.delivered, [{ ch: 'a', data: 'bare' }]);
  d.driver.stop();
});

test('a transport that worked gets a second try when the sidecar answers again (restart race)', async () => {
  const d = makeDriver();
  d.driver.start();
  started[0].ctx.opened();
  started[0].ctx.closed(new Error('sidecar went away'), false);
  await until(() => started.length === 2, 'the reconnect');
  // The reconnect failed while the sidecar was down, but the probe finds it back up.
  started[1].ctx.closed(new Error('refused'), false);
  await until(() => started.length === 3, 'the second chance');
  assert.equal(started[2].name, 'fake-a');
  started[2].ctx.closed(new Error('refused again'), false);
  await until(() => started.length === 4, 'the fallback');
  assert.equal(started[3].name, 'fake-b', 'refused twice while the sidecar answers: blocked');
  d.driver.stop();
});

// Tab sharing (tabs.js) in node: several Connections in one process stand for tabs,
// with a scripted BroadcastChannel (delivery can be held or dropped per tab), a Web
// Locks stand-in, and a fake transport driven by the test. Checks: one leader holds
// the only transport for the union of every tab's channels, relays to all tabs, and a
// takeover resumes from the oldest position any tab holds, so nothing is lost or
// repeated even when the old leader's last relays never reached a tab.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import { Comet, I } from './load.mjs';

// ---- BroadcastChannel stand-in --------------------------------------------------

class FakeBroadcastChannel {
  static all = new Set();
  constructor(name) {
    this.name = name;
    this.onmessage = null;
    this.held = null; // array while holding
    this.closed = false;
    FakeBroadcastChannel.all.add(this);
  }
  postMessage(msg) {
    const data = structuredClone(msg);
    for (const other of FakeBroadcastChannel.all) {
      if (other !== this && other.name === this.name && !other.closed) other.deliver(data);
    }
  }
  deliver(data) {
    if (this.held) return this.held.push(data);
    setTimeout(() => {
      if (!this.closed && this.onmessage) this.onmessage({ data });
    }, 0);
  }
  hold() {
    this.held = [];
  }
  /** Delivers (or, drop = true, loses) what was held, and stops holding. */
  release(drop = false) {
    const held = this.held;
    this.held = null;
    if (!drop) for (const d of held) this.deliver(d);
  }
  close() {
    this.closed = true;
    FakeBroadcastChannel.all.delete(this);
  }
}

// ---- Web Locks stand-in (exclusive locks, FIFO queue, abort while waiting) ----------

class FakeLocks {
  constructor() {
    this.holders = new Map();
    this.queues = new Map();
  }
  request(name, optsOrCb, maybeCb) {
    const cb = typeof optsOrCb === 'function' ? optsOrCb : maybeCb;
    const opts = typeof optsOrCb === 'function' ? {} : optsOrCb;
    return new Promise((resolve, reject) => {
      const entry = { cb, resolve, reject };
      const q = this.queues.get(name) ?? [];
      this.queues.set(name, q);
      q.push(entry);
      opts.signal?.addEventListener('abort', () => {
        const i = q.indexOf(entry);
        if (i >= 0) {
          q.splice(i, 1);
          reject(new Error('AbortError'));
        }
      });
      this.pump(name);
    });
  }
  pump(name) {
    if (this.holders.has(name)) return;
    const entry = this.queues.get(name)?.shift();
    if (!entry) return;
    this.holders.set(name, entry);
    Promise.resolve()
      .then(() => entry.cb({ name }))
      .then(
        (v) => {
          this.holders.delete(name);
          entry.resolve(v);
          this.pump(name);
        },
        (e) => {
          this.holders.delete(name);
          entry.reject(e);
          this.pump(name);
        },
      );
  }
  query() {
    return Promise.resolve({ held: [...this.holders.keys()].map((name) => ({ name, mode: 'exclusive' })), pending: [] });
  }
}

// ---- a transport the test drives ------------------------------------------------

let started = [];

before(() => {
  I.TRANSPORTS.fake = {
    available: () => true,
    create(ctx) {
      const t = {
        ctx,
        stopped: false,
        start() {
          t.channels = ctx.channels().slice().sort();
          t.cursor = ctx.cursor();
          started.push(t);
        },
        stop() {
          t.stopped = true;
        },
        update: () => false,
      };
      return t;
    },
  };
});
after(() => {
  delete I.TRANSPORTS.fake;
});

const saved = {};
const GLOBALS = ['BroadcastChannel', 'navigator', 'localStorage', 'addEventListener', 'removeEventListener'];
beforeEach(() => {
  started = [];
  for (const k of GLOBALS) saved[k] = Object.getOwnPropertyDescriptor(globalThis, k);
  Object.defineProperty(globalThis, 'BroadcastChannel', { value: FakeBroadcastChannel, configurable: true, writable: true });
  Object.defineProperty(globalThis, 'navigator', { value: { locks: new FakeLocks() }, configurable: true, writable: true });
});
const conns = [];
afterEach(() => {
  for (const c of conns.splice(0)) c.close();
  for (const [k, d] of Object.entries(saved)) {
    if (d) Object.defineProperty(globalThis, k, d);
    else delete globalThis[k];
  }
});

// ---- helpers --------------------------------------------------------------------

async function until(cond, what, ms = 3000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A "tab": a Connection to the fake transport, recording what its handlers get. */
function tab(name, channels) {
  const conn = Comet.connect('http://sidecar.test', {
    transports: ['fake'],
    tabHeartbeat: 60000, // heartbeats are not what these tests are about
    takeoverGather: 20,
    rememberTransport: false,
  });
  conns.push(conn);
  const t = { name, conn, got: {}, resets: [] };
  for (const ch of channels) t.sub = subscribe(t, ch);
  conn.on('reset', (r) => t.resets.push(r));
  return t;
}
function subscribe(t, ch) {
  t.got[ch] = [];
  return t.conn.subscribe(ch, (m) => t.got[ch].push(m.id));
}
const msg = (ch, id, epoch = 'E') => ({ ch, id, prev: id - 1, epoch, data: `${ch}${id}` });
const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const live = () => started.filter((t) => !t.stopped);

/** The one live transport (asserting there is exactly one). */
function current() {
  const l = live();
  assert.equal(l.length, 1, `one transport for all tabs (live: ${l.length})`);
  return l[0];
}

test('three tabs: one leader, one transport for the union of channels, relayed to all', async () => {
  const a = tab('a', ['x']);
  await until(() => a.conn.isLeader, 'a to lead');
  const b = tab('b', ['x', 'y']);
  const c = tab('c', ['x']);
  await until(() => started.length > 0 && current().channels.join() === 'x,y', 'the union x,y');
  const t = current();
  t.ctx.opened();
  t.ctx.object({ type: 'open', cursor: 'x@E.0,y@F.0' });
  for (const id of range(1, 5)) t.ctx.object(msg('x', id));
  t.ctx.object(msg('y', 1, 'F'));
  await until(() => c.got.x.length === 5 && b.got.y.length === 1, 'relays');
  assert.deepEqual([a.got.x, b.got.x, c.got.x], [range(1, 5), range(1, 5), range(1, 5)]);
  assert.deepEqual(b.got.y, [1]);
  assert.equal(a.got.y, undefined, 'a tab only gets its channels');
  assert.deepEqual([a.conn.isLeader, b.conn.isLeader, c.conn.isLeader], [true, false, false]);
  await until(() => b.conn.state === 'open' && c.conn.transport === 'fake', 'followers mirror the state');
  assert.equal(started.length, 1 + 1, 'a restart for b’s channel y, nothing else');
});

test('a follower subscribing to a channel the connection has starts where the connection is', async () => {
  const a = tab('a', ['x']);
  await until(() => started.length === 1, 'the transport');
  started[0].ctx.opened();
  started[0].ctx.object({ type: 'open', cursor: 'x@E.7' });
  const b = tab('b', []);
  const seen = [];
  b.conn.on('subscribed', (s) => seen.push(s));
  subscribe(b, 'x');
  await until(() => seen.length === 1, 'the subscribed event');
  assert.deepEqual(seen[0], { channel: 'x', epoch: 'E', id: 7 });
  started[0].ctx.object(msg('x', 8));
  await until(() => b.got.x.length === 1, 'the next message');
  assert.deepEqual([a.got.x, b.got.x], [[8], [8]]);
});

test('presence: every tab gets the members list, a tab subscribing later too; joins and leaves reach all', async () => {
  const ann = { id: '7', info: { name: 'Ann' } };
  const bob = { id: '9', info: {} };
  const a = tab('a', ['presence:r']);
  await until(() => started.length === 1, 'the transport');
  const t = started[0];
  t.ctx.opened();
  t.ctx.object({ type: 'open', cursor: 'presence:r@E.0' });
  t.ctx.object({ type: 'members', ch: 'presence:r', members: [ann] });
  // A follower subscribing now: the stream told the members once, the leader tells it.
  const b = tab('b', []);
  const sub = subscribe(b, 'presence:r');
  const got = [];
  b.conn.on('members', (e) => got.push(`members ${e.members.map((m) => m.id).join()}`));
  b.conn.on('join', (e) => got.push(`join ${e.member.id}`));
  b.conn.on('leave', (e) => got.push(`leave ${e.member.id}`));
  await until(() => got.length === 1, "the follower's members list");
  assert.deepEqual(sub.members(), [ann]);
  t.ctx.object({ type: 'join', ch: 'presence:r', member: bob });
  t.ctx.object({ type: 'leave', ch: 'presence:r', member: { id: '7' } });
  await until(() => got.length === 3, 'the join and the leave relayed');
  assert.deepEqual(got, ['members 7', 'join 9', 'leave 7']);
  assert.deepEqual([a.sub.members(), sub.members()], [[bob], [bob]]);
});

test('takeover: the leader closes before its last relays reach a tab; nothing lost or repeated', async () => {
  const a = tab('a', ['x']);
  await until(() => a.conn.isLeader, 'a to lead');
  const b = tab('b', ['x']);
  const c = tab('c', ['x']);
  await until(() => started.length >= 1, 'the transport');
  const t1 = current();
  t1.ctx.opened();
  t1.ctx.object({ type: 'open', cursor: 'x@E.0' });
  for (const id of range(1, 5)) t1.ctx.object(msg('x', id));
  await until(() => b.got.x.length === 5 && c.got.x.length === 5, 'everyone at 5');

  // 6..8 reach b but not c: the leader dies with them in flight.
  const cBus = c.conn.coord.bus.bc;
  cBus.hold();
  for (const id of range(6, 8)) t1.ctx.object(msg('x', id));
  await until(() => b.got.x.length === 8, 'b at 8');
  a.conn.close();
  assert.ok(t1.stopped);
  cBus.release(true); // lost with the old leader

  await until(() => b.conn.isLeader, 'b to take over');
  // b starts at its own position (8); c answers the announcement with 5: rewind to 5.
  await until(() => live().length === 1 && live()[0].cursor === 'x@E.5', 'a transport from the oldest position', 3000);
  const t2 = current();
  t2.ctx.opened();
  for (const id of range(6, 10)) t2.ctx.object(msg('x', id));
  await until(() => c.got.x.length === 10 && b.got.x.length === 10, 'both at 10');
  assert.deepEqual(a.got.x, range(1, 8));
  assert.deepEqual(b.got.x, range(1, 10), 'b dropped the replayed 6..8');
  assert.deepEqual(c.got.x, range(1, 10), 'c got 6..8 from the replay');
  assert.equal(c.conn.isLeader, false);
});

test('a gap seen by a follower (a relay lost) makes the leader resume from its position', async () => {
  const a = tab('a', ['x']);
  await until(() => a.conn.isLeader, 'a to lead');
  const b = tab('b', ['x']);
  await until(() => started.length >= 1, 'the transport');
  const t1 = current();
  t1.ctx.opened();
  t1.ctx.object({ type: 'open', cursor: 'x@E.0' });
  t1.ctx.object(msg('x', 1));
  await until(() => b.got.x.length === 1, 'b at 1');
  const bus = b.conn.coord.bus.bc;
  bus.hold();
  t1.ctx.object(msg('x', 2));
  bus.release(true); // lost
  t1.ctx.object(msg('x', 3)); // b: gap after 1
  await until(() => live().length === 1 && live()[0] !== t1, 'the resync');
  const t2 = current();
  assert.equal(t2.cursor, 'x@E.1');
  t2.ctx.opened();
  for (const id of [2, 3, 4]) t2.ctx.object(msg('x', id));
  await until(() => b.got.x.length === 4, 'b at 4');
  assert.deepEqual(b.got.x, [1, 2, 3, 4]);
  assert.deepEqual(a.got.x, [1, 2, 3, 4]);
});

test('a tab that unsubscribes or leaves takes its channels out of the connection', async () => {
  const a = tab('a', ['x']);
  await until(() => a.conn.isLeader, 'a to lead');
  const b = tab('b', ['y']);
  const c = tab('c', ['z']);
  await until(() => started.length && current().channels.join() === 'x,y,z', 'x,y,z');
  current().ctx.opened();
  b.sub.unsubscribe();
  await until(() => current().channels.join() === 'x,z', 'x,z after b unsubscribed');
  current().ctx.opened();
  c.conn.close();
  await until(() => current().channels.join() === 'x', 'x after c left');
});

test('reset notices reach only the tabs that lost messages', async () => {
  const a = tab('a', ['x']);
  await until(() => a.conn.isLeader, 'a to lead');
  const b = tab('b', ['x']);
  await until(() => started.length >= 1, 'the transport');
  const t = current();
  t.ctx.opened();
  t.ctx.object({ type: 'open', cursor: 'x@E.0' });
  for (const id of range(1, 3)) t.ctx.object(msg('x', id));
  await until(() => b.got.x.length === 3, 'b at 3');
  t.ctx.object({ type: 'reset', ch: 'x', reason: 'history-expired', epoch: 'E', id: 2 });
  t.ctx.object(msg('x', 4));
  await until(() => b.got.x.length === 4, 'b at 4');
  assert.deepEqual([a.resets, b.resets], [[], []], 'both were past the reset position');
  t.ctx.object({ type: 'reset', ch: 'x', reason: 'history-expired', epoch: 'E', id: 40 });
  t.ctx.object(msg('x', 41));
  await until(() => b.got.x.length === 5, 'b at 5');
  assert.deepEqual([a.resets.length, b.resets.length], [1, 1]);
  assert.deepEqual(b.got.x, [1, 2, 3, 4, 41]);
});

test('a refused channel: the error reaches the tabs subscribed to it; reauthorize() in a follower tries it again', async () => {
  const a = tab('a', ['x']);
  await until(() => a.conn.isLeader, 'a to lead');
  const b = tab('b', ['y']);
  const errors = { a: [], b: [] };
  a.conn.on('error', (e) => errors.a.push(e));
  b.conn.on('error', (e) => errors.b.push(e));
  await until(() => started.length && current().channels.join() === 'x,y', 'x,y');
  current().ctx.opened();
  current().ctx.object({ type: 'error', error: 'forbidden', ch: 'y', status: 403, message: 'not covered' });
  await until(() => errors.b.length === 1, 'b to hear of it');
  const e = errors.b[0];
  assert.deepEqual([e.channel, e.status, e.code, e.message], ['y', 403, 'forbidden', 'not covered']);
  assert.deepEqual(errors.a, [], 'a does not subscribe to y');
  await until(() => current().channels.join() === 'x', 'the connection without y');
  current().ctx.opened();
  b.conn.reauthorize();
  await until(() => current().channels.join() === 'x,y', 'y asked for again');
});

test('shareTabs: false gives every tab its own transport', async () => {
  const mk = () => {
    const conn = Comet.connect('http://sidecar.test', { transports: ['fake'], shareTabs: false, rememberTransport: false });
    conns.push(conn);
    conn.subscribe('x', () => {});
    return conn;
  };
  const a = mk();
  const b = mk();
  await until(() => started.length === 2, 'two transports');
  started[0].ctx.opened();
  started[1].ctx.opened();
  await until(() => a.state === 'open' && b.state === 'open', 'both open');
  assert.deepEqual([a.isLeader, b.isLeader], [true, true], 'a solo connection leads itself');
});

// ---- without Web Locks: the localStorage lease; without BroadcastChannel: storage events

/** localStorage whose changes fire `storage` events (async) at every listener. */
function fakeStorage() {
  const data = new Map();
  const listeners = new Set();
  const fire = (key, newValue) =>
    setTimeout(() => {
      for (const fn of listeners) fn({ key, newValue });
    }, 0);
  const storage = {
    getItem: (k) => (data.has(k) ? data.get(k) : null),
    setItem(k, v) {
      data.set(k, String(v));
      fire(k, String(v));
    },
    removeItem(k) {
      data.delete(k);
      fire(k, null);
    },
  };
  const define = (k, value) => Object.defineProperty(globalThis, k, { value, configurable: true, writable: true });
  define('localStorage', storage);
  define('addEventListener', (type, fn) => type === 'storage' && listeners.add(fn));
  define('removeEventListener', (type, fn) => listeners.delete(fn));
}

describe('without Web Locks', () => {
  beforeEach(() => {
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    fakeStorage();
  });

  function leaseTab(name) {
    const conn = Comet.connect('http://sidecar.test', { transports: ['fake'], tabHeartbeat: 40, takeoverGather: 20, rememberTransport: false });
    conns.push(conn);
    const t = { name, conn, got: [] };
    conn.subscribe('x', (m) => t.got.push(m.id));
    return t;
  }

  test('the lease elects one leader; when it leaves another takes over, from the oldest position', async () => {
    const tabs = [leaseTab('a'), leaseTab('b'), leaseTab('c')];
    await until(() => tabs.filter((t) => t.conn.isLeader).length === 1 && live().length === 1, 'one leader and one transport');
    // Stable: still one leader a few heartbeats later.
    const deadline = Date.now() + 300;
    while (Date.now() < deadline) {
      assert.equal(tabs.filter((t) => t.conn.isLeader).length <= 1, true, 'never two leaders once settled');
      await new Promise((r) => setTimeout(r, 10));
    }
    const leader = tabs.find((t) => t.conn.isLeader);
    const t1 = current();
    t1.ctx.opened();
    t1.ctx.object({ type: 'open', cursor: 'x@E.0' });
    for (const id of range(1, 4)) t1.ctx.object(msg('x', id));
    await until(() => tabs.every((t) => t.got.length === 4), 'all at 4');
    leader.conn.close();
    const rest = tabs.filter((t) => t !== leader);
    await until(() => rest.some((t) => t.conn.isLeader) && live().length === 1, 'a new leader with one transport');
    const t2 = current();
    assert.equal(t2.cursor, 'x@E.4');
    t2.ctx.opened();
    for (const id of range(5, 6)) t2.ctx.object(msg('x', id));
    await until(() => rest.every((t) => t.got.length === 6), 'the others at 6');
    for (const t of rest) assert.deepEqual(t.got, range(1, 6));
  });

  test('relay over storage events when BroadcastChannel is missing', async () => {
    Object.defineProperty(globalThis, 'BroadcastChannel', { value: undefined, configurable: true, writable: true });
    const a = leaseTab('a');
    await until(() => a.conn.isLeader && live().length === 1, 'a to lead');
    const b = leaseTab('b');
    await until(() => b.conn.state === 'connecting' || b.conn.state === 'open', 'b to see the leader');
    const t = current();
    t.ctx.opened();
    t.ctx.object({ type: 'open', cursor: 'x@E.0' });
    await until(() => b.conn.cursor() === 'x@E.0', 'b to learn where x starts');
    for (const id of range(1, 3)) t.ctx.object(msg('x', id));
    await until(() => b.got.length === 3, 'b at 3');
    assert.deepEqual([a.got, b.got], [range(1, 3), range(1, 3)]);
    assert.equal(b.conn.isLeader, false);
  });
});

// Presence in comet.js (presence.js, and its paths through session.js, tabs.js and
// connection.js): the members list from `members` notices or poll snapshots, `join`
// and `leave` from notices or from comparing snapshots, on the subscription and the
// connection.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import { Comet, I } from './load.mjs';

const ann = { id: '7', info: { name: 'Ann' } };
const bob = { id: '9', info: {} };
const cy = { id: '12', info: { name: 'Cy' } };

test('PresenceList: the first list, joins, leaves, and lists compared', () => {
  const p = new I.PresenceList();
  let c = p.apply({ type: 'join', ch: 'presence:r', member: cy }); // before any list (a poll's messages)
  assert.deepEqual(c.joined, [cy]);
  c = p.apply({ type: 'members', ch: 'presence:r', members: [ann, bob, cy] });
  assert.deepEqual(c.members, [ann, bob, cy], 'the first list is reported whole');
  assert.deepEqual([c.joined, c.left], [[], []]);
  c = p.apply({ type: 'join', ch: 'presence:r', member: { id: '7', info: { name: 'Ann B' } } });
  assert.deepEqual(c.joined, [], 'a known member: updated, not joined again');
  assert.deepEqual(p.members()[0].info, { name: 'Ann B' });
  c = p.apply({ type: 'leave', ch: 'presence:r', member: { id: '9' } });
  assert.deepEqual(c.left, [bob], 'a leave reports the member with its info');
  c = p.apply({ type: 'leave', ch: 'presence:r', member: { id: '9' } });
  assert.deepEqual(c.left, [], 'an unknown member leaving is ignored');
  c = p.apply({ type: 'members', ch: 'presence:r', members: [cy, bob] });
  assert.equal(c.members, undefined, 'later lists are compared, not reported whole');
  assert.deepEqual(c.left.map((m) => m.id), ['7']);
  assert.deepEqual(c.joined, [bob]);
  assert.deepEqual(p.members(), [cy, bob]);
  assert.deepEqual(p.notice('presence:r'), { type: 'members', ch: 'presence:r', members: [cy, bob] });
  c = p.apply({ type: 'members', ch: 'presence:r', members: [{ id: 3 }, null, cy, cy] });
  assert.deepEqual(p.members(), [cy], 'malformed and repeated entries are skipped');
});

test('classify: presence notices need a channel', () => {
  assert.equal(I.classify({ type: 'members', ch: 'presence:r', members: [] }), 'members');
  assert.equal(I.classify({ type: 'join', ch: 'presence:r', member: ann }), 'join');
  assert.equal(I.classify({ type: 'leave', ch: 'presence:r', member: ann }), 'leave');
  assert.equal(I.classify({ type: 'join', member: ann }), 'unknown');
});

// ---- through the Driver and a Connection, with a transport the test drives ----------

let started = [];
before(() => {
  I.TRANSPORTS.fakep = {
    available: () => true,
    create(ctx) {
      const t = {
        ctx,
        stopped: false,
        start() {
          t.channels = ctx.channels().slice();
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
  delete I.TRANSPORTS.fakep;
});
const conns = [];
afterEach(() => {
  for (const c of conns.splice(0)) c.close();
  started = [];
});

async function until(cond, what, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function connection() {
  const conn = Comet.connect('http://sidecar.test', { transports: ['fakep'], shareTabs: false, rememberTransport: false });
  conns.push(conn);
  const seen = [];
  for (const name of ['members', 'join', 'leave']) conn.on(name, (e) => seen.push([name, e.channel, e.member ? e.member.id : e.members.map((m) => m.id).join()]));
  return { conn, seen };
}

function watch(sub) {
  const got = [];
  sub.on('members', (list) => got.push(`members ${list.map((m) => m.id).join()}`));
  sub.on('join', (m) => got.push(`join ${m.id}`));
  sub.on('leave', (m) => got.push(`leave ${m.id}`));
  return got;
}

test('streams: the members notice, then join and leave notices, on the subscription and the connection', async () => {
  const { conn, seen } = connection();
  const sub = conn.subscribe('presence:r', () => {});
  const other = conn.subscribe('news', () => {});
  const got = watch(sub);
  assert.deepEqual(sub.members(), [], 'nothing known yet');
  await until(() => started.length === 1, 'the transport');
  const t = started[0];
  t.ctx.opened();
  t.ctx.object({ type: 'open', cursor: 'presence:r@E.0,news@E.0' });
  t.ctx.object({ type: 'members', ch: 'presence:r', members: [ann, bob] });
  t.ctx.object({ type: 'join', ch: 'presence:r', member: cy });
  t.ctx.object({ type: 'join', ch: 'presence:r', member: ann }); // itself, again: no event
  t.ctx.object({ type: 'leave', ch: 'presence:r', member: { id: '9' } });
  t.ctx.object({ type: 'join', ch: 'elsewhere', member: cy }); // not subscribed: ignored
  assert.deepEqual(got, ['members 7,9', 'join 12', 'leave 9']);
  assert.deepEqual(sub.members(), [ann, cy]);
  assert.deepEqual(other.members(), []);
  assert.deepEqual(seen, [['members', 'presence:r', '7,9'], ['join', 'presence:r', '12'], ['leave', 'presence:r', '9']]);

  // A reconnect brings a fresh list: what changed meanwhile is reported.
  t.ctx.closed(new Error('dropped'), false);
  await until(() => started.length === 2, 'the reconnect');
  const t2 = started[1];
  t2.ctx.opened();
  t2.ctx.object({ type: 'members', ch: 'presence:r', members: [cy, bob] });
  assert.deepEqual(got.slice(3), ['leave 7', 'join 9']);
  sub.unsubscribe();
  assert.deepEqual(sub.members(), []);
});

test('polling: join and leave come from comparing the lists of the answers', async () => {
  const { conn } = connection();
  const sub = conn.subscribe('presence:r', () => {});
  const got = watch(sub);
  await until(() => started.length === 1, 'the transport');
  const t = started[0];
  t.ctx.opened();
  assert.equal(t.ctx.batch([], 'presence:r@E.0', { 'presence:r': [ann] }), true);
  assert.equal(t.ctx.batch([], 'presence:r@E.0', { 'presence:r': [ann] }), true);
  // A join in `messages` and the list with it: reported once.
  t.ctx.batch([{ type: 'join', ch: 'presence:r', member: bob }], 'presence:r@E.0', { 'presence:r': [ann, bob] });
  // A leave and a join between two answers that carried no notices (e.g. missed).
  t.ctx.batch([], 'presence:r@E.0', { 'presence:r': [bob, cy] });
  assert.deepEqual(got, ['members 7', 'join 9', 'leave 7', 'join 12']);
  assert.deepEqual(sub.members(), [bob, cy]);
});

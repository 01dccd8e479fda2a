// Cursor bookkeeping and the exactly-once rules.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { I } from './load.mjs';

const P = (epoch, id) => ({ epoch, id });
const M = (ch, epoch, id, prev = id - 1) => ({ ch, id, prev, epoch, data: `${ch}-${id}` });

test('positions: parse and format', () => {
  assert.deepEqual(I.parsePosition('k3j9.17'), P('k3j9', 17));
  assert.deepEqual(I.parsePosition('.0'), P('', 0));
  assert.equal(I.parsePosition('.5'), null, 'an id without an epoch means nothing');
  assert.equal(I.parsePosition('bad'), null);
  assert.equal(I.parsePosition('a-b.1'), null);
  assert.equal(I.formatPosition(P('E', 3)), 'E.3');
  assert.equal(I.formatPosition(P('', 0)), '.0');
});

test('cursors: parse and format', () => {
  const c = I.parseCursor('chat:42@k3j9q2m1x0aa.17,news@.0');
  assert.deepEqual(c, { 'chat:42': P('k3j9q2m1x0aa', 17), news: P('', 0) });
  // '@' cannot be in a channel name, but the last one is the separator anyway.
  assert.deepEqual(I.parseCursor(''), {});
  assert.deepEqual(I.parseCursor('a@E.1,garbage,b@E.x'), { a: P('E', 1) });
  assert.equal(I.formatCursor({ a: P('E', 1), b: P('', 0), c: P('F', 9) }, ['b', 'a', 'z']), 'b@.0,a@E.1');
  assert.equal(I.formatCursor({}, ['a']), '');
});

test('judge: next, duplicate, gap, bare, unknown position, new epoch', () => {
  assert.equal(I.judge(P('E', 4), M('a', 'E', 5)), 'deliver');
  assert.equal(I.judge(P('E', 5), M('a', 'E', 5)), 'duplicate');
  assert.equal(I.judge(P('E', 9), M('a', 'E', 5)), 'duplicate');
  assert.equal(I.judge(P('E', 4), M('a', 'E', 7)), 'gap');
  assert.equal(I.judge(null, M('a', 'E', 7)), 'deliver', 'a fresh subscription takes what comes');
  assert.equal(I.judge(P('E', 4), { ch: 'a', data: 'bare' }), 'bare');
  assert.equal(I.judge(P('E', 40), M('a', 'F', 1)), 'deliver', 'a new epoch is the server’s call');
  assert.equal(I.judge(P('', 0), M('a', 'E', 1)), 'deliver', 'first message of a channel');
  // ".0" may be a Redis-backed sidecar's placeholder for a channel still syncing.
  assert.equal(I.judge(P('', 0), M('a', 'E', 3)), 'deliver');
  // No prev (older servers): id - 1 is assumed.
  assert.equal(I.judge(P('E', 4), { ch: 'a', id: 5, epoch: 'E', data: '' }), 'deliver');
});

test('judge drives exactly-once delivery over a replayed, duplicated stream', () => {
  // What a reconnecting client may see: a replay overlapping what it has, twice.
  const stream = [1, 2, 3, 2, 3, 4, 5, 3, 4, 5, 6].map((id) => M('a', 'E', id));
  let pos = null;
  const delivered = [];
  for (const m of stream) {
    const v = I.judge(pos, m);
    if (v === 'deliver') {
      pos = P(m.epoch, m.id);
      delivered.push(m.id);
    }
  }
  assert.deepEqual(delivered, [1, 2, 3, 4, 5, 6]);
});

test('reset notices: surfaced only to holders that lost something', () => {
  const notice = { type: 'reset', ch: 'a', reason: 'history-expired', epoch: 'E', id: 40 };
  assert.deepEqual(I.applyReset(P('E', 10), notice), { surface: true, position: P('E', 40) });
  assert.deepEqual(I.applyReset(P('E', 55), notice), { surface: false, position: P('E', 55) }, 'already past it');
  assert.deepEqual(I.applyReset(P('E', 40), notice), { surface: false, position: P('E', 40) });
  assert.deepEqual(I.applyReset(null, notice), { surface: true, position: P('E', 40) });
  const changed = { type: 'reset', ch: 'a', reason: 'epoch-changed', epoch: 'F', id: 0 };
  assert.deepEqual(I.applyReset(P('E', 99), changed), { surface: true, position: P('F', 0) });
});

test('server positions merge: ours wins when ahead in the same epoch', () => {
  assert.deepEqual(I.mergeServerPosition(null, P('E', 3)), P('E', 3));
  assert.deepEqual(I.mergeServerPosition(P('E', 5), P('E', 3)), P('E', 5));
  assert.deepEqual(I.mergeServerPosition(P('E', 2), P('E', 3)), P('E', 3));
  assert.deepEqual(I.mergeServerPosition(P('E', 2), P('F', 0)), P('F', 0));
  assert.deepEqual(I.mergeServerPosition(P('E', 2), P('', 0)), P('E', 2));
});

test('min position (takeover: resume from the oldest a tab holds)', () => {
  assert.deepEqual(I.minPosition(P('E', 5), P('E', 3)), P('E', 3));
  assert.deepEqual(I.minPosition(P('E', 3), P('E', 5)), P('E', 3));
  assert.deepEqual(I.minPosition(null, P('E', 5)), P('E', 5));
  assert.deepEqual(I.minPosition(P('E', 5), null), P('E', 5));
  assert.deepEqual(I.minPosition(P('E', 5), P('F', 1)), P('E', 5), 'different epochs: keep ours');
  assert.equal(I.isBehind(P('E', 1), P('E', 2)), true);
  assert.equal(I.isBehind(P('E', 2), P('E', 2)), false);
  assert.equal(I.isBehind(P('E', 1), P('F', 2)), false);
});

test('channel names and callback names follow the protocol', () => {
  assert.ok(I.validChannel('chat:42'));
  assert.ok(I.validChannel('a/b=c+d-e_f.g'));
  assert.ok(!I.validChannel('a,b'));
  assert.ok(!I.validChannel('a@b'));
  assert.ok(!I.validChannel(''));
  assert.ok(!I.validChannel('x'.repeat(129)));
  assert.ok(I.validCallback('__comet.f1_abc'));
  assert.ok(I.validCallback('$.a.b'));
  assert.ok(!I.validCallback('a..b'));
  assert.ok(!I.validCallback('1a'));
  assert.ok(!I.validCallback('a'.repeat(65)));
});

test('URLs', () => {
  assert.equal(I.buildUrl('http://h:1', '/poll', { ch: 'a,b', cursor: 'a@E.1', wait: '', x: undefined }), 'http://h:1/poll?ch=a%2Cb&cursor=a%40E.1');
  assert.equal(I.toWsUrl('https://h/x/ws?a=1'), 'wss://h/x/ws?a=1');
  assert.equal(I.toWsUrl('http://h/ws'), 'ws://h/ws');
  const loc = { protocol: 'https:', host: 'app.example:8443', href: 'https://app.example:8443/dir/page.html?q=1' };
  assert.equal(I.normalizeBase('/comet/', loc), 'https://app.example:8443/comet');
  assert.equal(I.normalizeBase('', loc), 'https://app.example:8443');
  assert.equal(I.normalizeBase('//push.example', loc), 'https://push.example');
  assert.equal(I.normalizeBase('sub', loc), 'https://app.example:8443/dir/sub');
  assert.equal(I.normalizeBase('http://127.0.0.1:8080/', loc), 'http://127.0.0.1:8080');
});

// Presence edges (docs/protocol.md, "Presence"): a long-poll whose page closed leaves
// after the grace from the close, not from --poll-timeout; a WebSocket's user never
// changes on refresh (another sub closes the socket, 1008).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openWs, sendJson, closeWs } from './lib/clients.mjs';
import { RawClient, poll, startSidecar, uniqueChannel, delay } from './lib/sidecar.mjs';
import { tokenFor } from './lib/tokens.mjs';

const SECRET = 'presence-lifecycle-secret';
const POLL_TIMEOUT_MS = 20000;
const POLL_MEMBER_GRACE_MS = 5000; // a poller's least grace (grace 0 here)

function token(ch, sub) {
  return tokenFor(ch, SECRET, { sub });
}

async function wsMember(sc, ch, sub) {
  const ws = await openWs(`${sc.wsUrl}/ws?token=${token(ch, sub)}`);
  sendJson(ws, { cmd: 'sub', ch });
  const subscribed = await ws.messages.take(5000, (m) => m.type === 'subscribed' || m.type === 'error');
  assert.equal(subscribed.type, 'subscribed', JSON.stringify(subscribed));
  assert.equal((await ws.messages.take(5000)).type, 'members');
  return ws;
}

describe('presence lifecycle', () => {
  let sc;

  before(async () => {
    sc = await startSidecar([
      '--token-secret', SECRET,
      '--workers', '2',
      '--presence-grace', '0',
      '--poll-timeout', `${POLL_TIMEOUT_MS}ms`,
    ]);
  });
  after(async () => {
    await sc?.stop();
  });

  test('a held long-poll whose connection closes leaves at close + grace, not at --poll-timeout', async () => {
    const ch = `presence:${uniqueChannel('pollclose')}`;
    const watcher = await wsMember(sc, ch, 'watcher');
    // The poller joins with a first poll (its own join would answer a held one at once),
    // then holds the next one.
    const first = await poll(sc, { ch, wait: '0', token: token(ch, 'poller') });
    assert.equal(first.status, 200);
    await watcher.messages.take(5000, (m) => m.type === 'join' && m.member.id === 'poller');
    const poller = await RawClient.connect(sc.port);
    const query = `ch=${ch}&cursor=${encodeURIComponent(first.json.cursor)}&token=${token(ch, 'poller')}`;
    poller.write(`GET /poll?${query} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await delay(500);
    assert.equal(poller.buf.length, 0, 'the poll is held');
    const closedAt = Date.now();
    poller.socket.end(); // the page closes: FIN while the poll is held
    const leave = await watcher.messages.take(POLL_MEMBER_GRACE_MS + 3000, (m) => m.type === 'leave');
    const elapsed = Date.now() - closedAt;
    assert.deepEqual(leave, { type: 'leave', ch, member: { id: 'poller' } });
    assert.ok(elapsed >= POLL_MEMBER_GRACE_MS - 100, `leave ${elapsed} ms after the close: before the grace`);
    assert.ok(elapsed < POLL_TIMEOUT_MS, `leave ${elapsed} ms after the close`);
    poller.destroy();
    await closeWs(watcher);
  });

  test('a WebSocket refresh keeps the user: another sub is refused and closes with 1008', async () => {
    const ch = `presence:${uniqueChannel('refresh')}`;
    const ws = await wsMember(sc, ch, '7');
    sendJson(ws, { cmd: 'auth', token: token(ch, '7') });
    const same = await ws.messages.take(5000, (m) => m.type === 'auth');
    assert.equal(same.type, 'auth');
    assert.equal(same.sub, '7');
    sendJson(ws, { cmd: 'auth', token: token(ch, '8') });
    const error = await ws.messages.take(5000, (m) => m.type === 'error');
    assert.equal(error.type, 'error');
    assert.equal(error.error, 'forbidden');
    assert.equal(error.status, 403);
    assert.match(error.message, /names user "8", but this connection is user "7"/);
    const closed = await ws.closed;
    assert.equal(closed.code, 1008);
    assert.equal(closed.reason, 'user changed');
  });
});

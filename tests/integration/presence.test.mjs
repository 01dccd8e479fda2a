// Presence (docs/protocol.md, "Presence"): members, join/leave notices on every
// transport, the grace period, refusals, and the /presence and /occupancy queries.
// One sidecar with two workers: members on both workers are one registry.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { openWs, sendJson, closeWs } from './lib/clients.mjs';
import { RawClient, SseStream, startSidecar, uniqueChannel, delay, waitUntil } from './lib/sidecar.mjs';
import { tokenFor } from './lib/tokens.mjs';

const SECRET = 'presence-test-secret';
const GRACE_MS = 1000;

function token(ch, sub, info) {
  return tokenFor(ch, SECRET, { sub, extra: info === undefined ? {} : { info } });
}

function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => {
          let json;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, body, json });
        });
      })
      .on('error', reject);
  });
}

/** A WebSocket member of `ch`: waits for its subscribed and members notices. */
async function wsMember(sc, ch, sub, info) {
  const ws = await openWs(`${sc.wsUrl}/ws?token=${token(ch, sub, info)}`);
  sendJson(ws, { cmd: 'sub', ch });
  const subscribed = await ws.messages.take(5000, (m) => m.type === 'subscribed' || m.type === 'error');
  assert.equal(subscribed.type, 'subscribed', JSON.stringify(subscribed));
  const members = await ws.messages.take(5000);
  assert.equal(members.type, 'members', 'the members notice comes right after subscribed');
  ws.members = members.members;
  return ws;
}

/** Presence notices from an xhr /stream (NDJSON), parsed as they come. */
async function streamMember(sc, ch, sub) {
  const client = await RawClient.connect(sc.port);
  client.write(`GET /stream?format=xhr&ch=${ch}&token=${token(ch, sub)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const objects = [];
  let pending = '';
  let headDone = false;
  const take = () => {
    let text = client.buf.toString('utf8');
    client.buf = Buffer.alloc(0);
    if (!headDone) {
      const i = (pending + text).indexOf('\r\n\r\n');
      if (i < 0) {
        pending += text;
        return;
      }
      text = (pending + text).slice(i + 4);
      pending = '';
      headDone = true;
    }
    pending += text;
    for (const line of pending.split('\n').slice(0, -1)) {
      const m = /\{.*\}/.exec(line); // chunk sizes and padding around the objects
      if (m) objects.push(JSON.parse(m[0]));
    }
    pending = pending.slice(pending.lastIndexOf('\n') + 1);
  };
  client.socket.on('data', take);
  take();
  return { client, objects };
}

function memberIds(list) {
  return list.map((m) => m.id).sort();
}

describe('presence', () => {
  let sc;

  before(async () => {
    sc = await startSidecar(['--token-secret', SECRET, '--workers', '2', '--presence-grace', `${GRACE_MS}ms`]);
  });
  after(async () => {
    await sc?.stop();
  });

  test('a presence subscription without a user id is refused on every transport', async () => {
    const ch = `presence:${uniqueChannel('nouser')}`;
    const t = token(ch); // covers the channel, no sub
    for (const path of [`/sse?ch=${ch}`, `/stream?format=xhr&ch=${ch}`, `/poll?ch=${ch}`, `/poll?wait=0&ch=${ch}`]) {
      const r = await get(`${sc.url}${path}&token=${t}`);
      assert.equal(r.status, 403, path);
      assert.equal(r.json.error, 'presence channel needs a user id (token sub or auth-url user)');
      assert.equal(r.json.ch, ch);
    }
    const ws = await openWs(`${sc.wsUrl}/ws?token=${t}`);
    sendJson(ws, { cmd: 'sub', ch });
    const error = await ws.messages.take();
    assert.equal(error.type, 'error');
    assert.equal(error.error, 'forbidden');
    assert.equal(error.status, 403);
    assert.equal(error.message, 'presence channel needs a user id (token sub or auth-url user)');
    await closeWs(ws);
    // Info that is not an object refuses the token; over 1 KiB refuses the subscription.
    const big = await get(`${sc.url}/poll?wait=0&ch=${ch}&token=${token(ch, 'u', { pad: 'x'.repeat(1100) })}`);
    assert.equal(big.status, 403);
    assert.match(big.json.error, /info over 1 KiB/);
    const notObject = await get(`${sc.url}/poll?wait=0&ch=${ch}&token=${token(ch, 'u', [1, 2])}`);
    assert.equal(notObject.status, 403);
  });

  test('WebSocket: members list, join, and one leave after the grace period (not before)', async () => {
    const ch = `presence:${uniqueChannel('ws')}`;
    const ann = await wsMember(sc, ch, '7', { name: 'Ann' });
    assert.deepEqual(ann.members, [{ id: '7', info: { name: 'Ann' } }]);
    const bob = await wsMember(sc, ch, 9);
    assert.deepEqual(memberIds(bob.members), ['7', '9']);
    const join = await ann.messages.take(5000, (m) => m.type === 'join' && m.member.id === '9');
    assert.deepEqual(join, { type: 'join', ch, member: { id: '9', info: {} } });
    const closedAt = Date.now();
    await closeWs(bob);
    const leave = await ann.messages.take(GRACE_MS + 3000, (m) => m.type === 'leave');
    const after = Date.now() - closedAt;
    assert.deepEqual(leave, { type: 'leave', ch, member: { id: '9' } });
    assert.ok(after >= GRACE_MS - 50, `leave after ${after} ms, grace ${GRACE_MS}`);
    await closeWs(ann);
  });

  test('SSE, /stream, long-poll: each sees joins and leaves; 3 tabs of one user are one member', async () => {
    const ch = `presence:${uniqueChannel('tabs')}`;
    const observer = await wsMember(sc, ch, 'observer');

    // SSE member (raw socket): comet-members after the opening.
    const sseBlocks = [];
    const sse = await SseStream.open(sc.port, `/sse?ch=${ch}&token=${token(ch, 'sse-user')}`, {
      onBlock: (b) => sseBlocks.push(b),
    });
    assert.equal(sse.response.status, 200);
    await waitUntil(() => sseBlocks.some((b) => b.event === 'comet-members'), { what: 'comet-members' });
    const members = JSON.parse(sseBlocks.find((b) => b.event === 'comet-members').data);
    assert.deepEqual(memberIds(members.members), ['observer', 'sse-user']);
    assert.equal(sseBlocks.find((b) => b.event === 'comet-members').id, undefined, 'no id: on notices');
    await observer.messages.take(5000, (m) => m.type === 'join' && m.member.id === 'sse-user');

    // User 3 in three tabs: WebSocket, SSE (format=json), xhr stream.
    const tabWs = await wsMember(sc, ch, '3');
    const tabSseBlocks = [];
    const tabSse = await SseStream.open(sc.port, `/sse?format=json&ch=${ch}&token=${token(ch, '3')}`, {
      onBlock: (b) => tabSseBlocks.push(b),
    });
    const tabStream = await streamMember(sc, ch, '3');
    await waitUntil(() => tabStream.objects.some((o) => o.type === 'members'), { what: 'members on /stream' });
    assert.deepEqual(memberIds(tabStream.objects.find((o) => o.type === 'members').members), ['3', 'observer', 'sse-user']);
    await waitUntil(() => tabSseBlocks.some((b) => b.event === 'comet-members'), { what: 'comet-members (json)' });

    // SSE member saw user 3 join exactly once (named event, raw format).
    await waitUntil(() => sseBlocks.some((b) => b.event === 'comet-join' && JSON.parse(b.data).member.id === '3'));
    const r = await get(`${sc.publishUrl}/presence/${ch}`);
    assert.equal(r.status, 200);
    assert.equal(r.json.count, 3);
    assert.deepEqual(memberIds(r.json.members), ['3', 'observer', 'sse-user']);
    const occ = await get(`${sc.publishUrl}/occupancy?ch=${ch},presence:nobody`);
    assert.deepEqual(occ.json, {
      channels: { [ch]: { members: 3, connections: 5 }, 'presence:nobody': { members: 0, connections: 0 } },
    });

    // The /stream tab sees a later join.
    const late = await wsMember(sc, ch, 'late');
    await waitUntil(() => tabStream.objects.some((o) => o.type === 'join' && o.member.id === 'late'), { what: 'join on /stream' });
    await closeWs(late);

    // Closing two of user 3's tabs: no leave. Closing the last: one leave, after the grace.
    await closeWs(tabWs);
    tabSse.close();
    await delay(GRACE_MS + 500);
    const leaves3 = () => observer.messages.items.filter((m) => m.type === 'leave' && m.member.id === '3').length;
    assert.equal(leaves3(), 0, 'user 3 still has a tab open');
    const closedAt = Date.now();
    tabStream.client.destroy();
    await waitUntil(() => leaves3() === 1, { timeoutMs: GRACE_MS + 3000, what: 'the leave of user 3' });
    assert.ok(Date.now() - closedAt >= GRACE_MS - 50);
    await delay(500);
    assert.equal(leaves3(), 1, 'exactly one leave');
    assert.equal(observer.messages.items.filter((m) => m.type === 'join' && m.member.id === '3').length, 1, 'one join');
    await waitUntil(() => sseBlocks.some((b) => b.event === 'comet-leave' && JSON.parse(b.data).member.id === '3'));

    sse.close();
    await closeWs(observer);
  });

  test('long-poll: answers carry "members"; a held poll is answered by a join', async () => {
    const ch = `presence:${uniqueChannel('poll')}`;
    const t = token(ch, 'poller');
    const first = await get(`${sc.url}/poll?wait=0&ch=${ch}&token=${t}`);
    assert.equal(first.status, 200);
    assert.deepEqual(first.json.members, { [ch]: [{ id: 'poller', info: {} }] });
    // A held poll: answered when someone joins.
    const held = get(`${sc.url}/poll?ch=${ch}&cursor=${encodeURIComponent(first.json.cursor)}&token=${t}`);
    await delay(300);
    const ws = await wsMember(sc, ch, 'joiner');
    assert.deepEqual(memberIds(ws.members), ['joiner', 'poller'], 'a poller is a member between polls (grace)');
    const answer = await held;
    assert.equal(answer.status, 200);
    assert.ok(answer.json.messages.some((m) => m.type === 'join' && m.member.id === 'joiner'), answer.body);
    assert.deepEqual(memberIds(answer.json.members[ch]), ['joiner', 'poller']);
    // JSONP carries the same.
    const jsonp = await get(`${sc.url}/poll?wait=0&callback=cb&ch=${ch}&token=${t}`);
    assert.match(jsonp.body, /"members":\{"presence:/);
    // The poller stops polling: the WebSocket member sees it leave after the grace, which
    // for a poller is at least 5 s (docs/protocol.md, "Grace").
    await ws.messages.take(Math.max(GRACE_MS, 5000) + 4000, (m) => m.type === 'leave' && m.member.id === 'poller');
    await closeWs(ws);
  });

  test('/presence and /occupancy follow the publish policy', async () => {
    const ch = `presence:${uniqueChannel('policy')}`;
    const pub = await get(`${sc.url}/presence/${ch}`);
    assert.equal(pub.status, 403, 'the public listener without --publish-key');
    const occ = await get(`${sc.url}/occupancy?ch=${ch}`);
    assert.equal(occ.status, 403);
    const relayed = await get(`${sc.publishUrl}/presence/${ch}`, { 'X-Forwarded-For': '1.2.3.4' });
    assert.equal(relayed.status, 403, 'a relayed request is never local');
    const ok = await get(`${sc.publishUrl}/presence/${ch}`);
    assert.deepEqual(ok.json, { ch, members: [], count: 0 });
    const bad = await get(`${sc.publishUrl}/presence/bad,name`);
    assert.equal(bad.status, 400);
  });

  test('metrics count members and events', async () => {
    const r = await get(`${sc.publishUrl}/metrics`);
    assert.match(r.body, /^comet_presence_members \d+$/m);
    assert.match(r.body, /^comet_presence_events_total\{kind="member_added"\} [1-9]\d*$/m);
    assert.match(r.body, /^comet_presence_events_total\{kind="channel_vacated"\} \d+$/m);
  });
});

describe('presence with --presence-max-members 2', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--token-secret', SECRET, '--presence-max-members', '2', '--workers', '2']);
  });
  after(async () => {
    await sc?.stop();
  });

  test('a third user is refused on every transport; members add tabs; a place frees on leave', async () => {
    const ch = `presence:${uniqueChannel('cap')}`;
    const ann = await wsMember(sc, ch, 'ann');
    const bob = await wsMember(sc, ch, 'bob');
    const expected = `presence channel '${ch}' is full (2 members, --presence-max-members)`;
    for (const path of [`/sse?ch=${ch}`, `/stream?format=xhr&ch=${ch}`, `/poll?ch=${ch}`, `/poll?wait=0&ch=${ch}`]) {
      const r = await get(`${sc.url}${path}&token=${token(ch, 'cid')}`);
      assert.equal(r.status, 403, path);
      assert.equal(r.json.error, expected);
      assert.equal(r.json.ch, ch);
    }
    const cid = await openWs(`${sc.wsUrl}/ws?token=${token(ch, 'cid')}`);
    sendJson(cid, { cmd: 'sub', ch });
    const error = await cid.messages.take(5000);
    assert.equal(error.type, 'error');
    assert.equal(error.error, 'forbidden');
    assert.equal(error.message, expected);
    // A member's second tab is not a new member.
    const annAgain = await get(`${sc.url}/poll?wait=0&ch=${ch}&token=${token(ch, 'ann')}`);
    assert.equal(annAgain.status, 200);
    const occupancy = await get(`${sc.publishUrl}/occupancy?ch=${ch}`);
    assert.equal(occupancy.json.channels[ch].members, 2);
    // bob leaves (grace 5 s by default: wait for the leave), then cid gets in.
    await closeWs(bob);
    await waitUntil(async () => (await get(`${sc.publishUrl}/occupancy?ch=${ch}`)).json.channels[ch].members === 1, {
      timeoutMs: 10000,
      intervalMs: 200,
      what: 'bob to leave',
    });
    sendJson(cid, { cmd: 'sub', ch });
    const subscribed = await cid.messages.take(5000, (m) => m.type === 'subscribed' || m.type === 'error');
    assert.equal(subscribed.type, 'subscribed', JSON.stringify(subscribed));
    await closeWs(cid);
    await closeWs(ann);
  });
});

describe('presence with --publish-key', () => {
  let sc;
  before(async () => {
    sc = await startSidecar(['--token-secret', SECRET, '--publish-key', 'k3y']);
  });
  after(async () => {
    await sc?.stop();
  });

  test('the public listener answers queries only with the key', async () => {
    const ch = `presence:${uniqueChannel('key')}`;
    assert.equal((await get(`${sc.url}/presence/${ch}`)).status, 401);
    assert.equal((await get(`${sc.url}/occupancy?ch=${ch}`)).status, 401);
    const ok = await get(`${sc.url}/occupancy?ch=${ch}`, { 'X-Comet-Key': 'k3y' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { channels: { [ch]: { members: 0, connections: 0 } } });
  });
});

describe('presence with --auth-url', () => {
  let sc;
  let app;
  before(async () => {
    // The app: the session cookie names the user; "nouser" gets no user id.
    app = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const channels = new URLSearchParams(body).get('channels').split(',');
        const who = /sid=(\w+)/.exec(req.headers.cookie ?? '')?.[1];
        const answer = { allow: channels, ttl: 60 };
        if (who !== 'nouser') Object.assign(answer, { user: who, info: { name: who.toUpperCase() } });
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise((resolve) => app.listen(0, '127.0.0.1', resolve));
    sc = await startSidecar(['--auth-url', `http://127.0.0.1:${app.address().port}/auth`, '--presence-grace', '200ms']);
  });
  after(async () => {
    await sc?.stop();
    app?.close();
  });

  test("the app's user and info make the member; no user is refused", async () => {
    const ch = `presence:${uniqueChannel('app')}`;
    const ok = await get(`${sc.url}/poll?wait=0&ch=${ch}`, { Cookie: 'sid=dora' });
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(ok.json.members, { [ch]: [{ id: 'dora', info: { name: 'DORA' } }] });
    const refused = await get(`${sc.url}/poll?wait=0&ch=${ch}`, { Cookie: 'sid=nouser' });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error, 'presence channel needs a user id (token sub or auth-url user)');
    // WebSocket: the handshake's cookie is asked about the sub.
    const ws = await openWs(`${sc.wsUrl}/ws`, { headers: { Cookie: 'sid=eve' } });
    sendJson(ws, { cmd: 'sub', ch });
    await ws.messages.take(5000, (m) => m.type === 'subscribed');
    const members = await ws.messages.take();
    assert.equal(members.type, 'members');
    assert.deepEqual(members.members.find((m) => m.id === 'eve'), { id: 'eve', info: { name: 'EVE' } });
    const wsRefused = await openWs(`${sc.wsUrl}/ws`, { headers: { Cookie: 'sid=nouser' } });
    sendJson(wsRefused, { cmd: 'sub', ch });
    const error = await wsRefused.messages.take();
    assert.equal(error.error, 'forbidden');
    assert.equal(error.message, 'presence channel needs a user id (token sub or auth-url user)');
    await closeWs(ws);
    await closeWs(wsRefused);
  });
});

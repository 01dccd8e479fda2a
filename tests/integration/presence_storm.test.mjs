// A reconnect storm on a presence channel (docs/protocol.md, "Grace"): 5,000 SSE
// clients (raw sockets) of 100 users (50 tabs each) all drop at once and come back
// within --presence-grace. An observer must see no join and no leave, and the sidecar
// must produce no presence event (comet_presence_events_total unchanged).
//
// 100 users rather than 5,000: every join is sent to every subscriber, so building up
// 5,000 distinct members costs 12.5 million notices before the storm even starts; the
// grace logic is per user either way (each user's last tab closes and comes back).

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';

import { openWs, sendJson, closeWs } from './lib/clients.mjs';
import { startSidecar, uniqueChannel, delay, waitUntil } from './lib/sidecar.mjs';
import { tokenFor } from './lib/tokens.mjs';

const SECRET = 'presence-storm-secret';
const CLIENTS = 5000;
const USERS = 100;
const GRACE_MS = 10000;
const BATCH = 250;

let sc;
before(async () => {
  sc = await startSidecar([
    '--token-secret', SECRET, '--workers', '2', '--presence-grace', `${GRACE_MS}ms`, '--heartbeat', '60s',
  ]);
});
after(async () => {
  await sc?.stop();
});

function metrics() {
  return new Promise((resolve, reject) => {
    http.get(`${sc.publishUrl}/metrics`, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        const events = {};
        for (const m of body.matchAll(/^comet_presence_events_total\{kind="(\w+)"\} (\d+)$/gm)) events[m[1]] = Number(m[2]);
        const members = Number(/^comet_presence_members (\d+)$/m.exec(body)?.[1]);
        resolve({ events, members });
      });
    }).on('error', reject);
  });
}

/** Opens one raw SSE subscriber; resolves with its socket once its members notice came. */
function openClient(target) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: sc.port, host: '127.0.0.1' });
    let seen = '';
    let ready = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no comet-members within 20 s; got ${JSON.stringify(seen.slice(0, 300))}`));
    }, 20000);
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`));
    socket.on('data', (chunk) => {
      if (ready) return; // drained and ignored from here on
      seen += chunk.toString('latin1');
      if (seen.includes('event: comet-members')) {
        ready = true;
        seen = '';
        clearTimeout(timer);
        resolve(socket);
      } else if (seen.startsWith('HTTP/1.1 4') || seen.startsWith('HTTP/1.1 5')) {
        clearTimeout(timer);
        reject(new Error(seen.slice(0, 300)));
      }
    });
    socket.on('error', (err) => {
      if (!ready) {
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}

async function openAll(targets) {
  const sockets = [];
  for (let i = 0; i < targets.length; i += BATCH)
    sockets.push(...(await Promise.all(targets.slice(i, i + BATCH).map(openClient))));
  return sockets;
}

test(`${CLIENTS} clients of ${USERS} users drop and reconnect within the grace: no join, no leave, no event`, { timeout: 120000 }, async () => {
  const ch = `presence:${uniqueChannel('storm')}`;
  const observer = await openWs(`${sc.wsUrl}/ws?token=${tokenFor(ch, SECRET, { sub: 'observer' })}`);
  sendJson(observer, { cmd: 'sub', ch });
  await observer.messages.take(5000, (m) => m.type === 'members');

  const tokens = Array.from({ length: USERS }, (_, u) => tokenFor(ch, SECRET, { sub: `user-${u}` }));
  const targets = Array.from({ length: CLIENTS }, (_, i) => `/sse?ch=${ch}&token=${tokens[i % USERS]}`);
  const setupStart = Date.now();
  let sockets = await openAll(targets);
  const setupMs = Date.now() - setupStart;
  // The observer's own join may come too (a join may name a member already listed).
  const userJoins = () => observer.messages.items.filter((m) => m.type === 'join' && m.member.id !== 'observer').length;
  await waitUntil(() => userJoins() === USERS, { timeoutMs: 20000, what: `${USERS} joins at the observer` });
  await delay(300);
  const before = await metrics();
  assert.equal(before.members, USERS + 1);
  const noticesBefore = observer.messages.items.length;

  // The storm: every client drops at once, then all reconnect.
  const stormStart = Date.now();
  for (const s of sockets) s.destroy();
  sockets = await openAll(targets);
  const stormMs = Date.now() - stormStart;
  assert.ok(stormMs < GRACE_MS, `the storm took ${stormMs} ms, longer than the grace (${GRACE_MS} ms)`);

  // Past the grace of the drop: every leave that was going to happen has happened.
  await delay(Math.max(0, stormStart + GRACE_MS + 1000 - Date.now()));
  const afterStorm = await metrics();
  const notices = observer.messages.items.slice(noticesBefore).filter((m) => m.type === 'join' || m.type === 'leave');
  const produced = Object.keys(afterStorm.events).reduce((n, k) => n + afterStorm.events[k] - (before.events[k] ?? 0), 0);
  console.log(
    `presence storm: ${CLIENTS} SSE clients / ${USERS} users; set up in ${setupMs} ms; all dropped and ` +
      `reconnected in ${stormMs} ms (grace ${GRACE_MS} ms); join/leave notices at the observer: ` +
      `${notices.length}; presence events produced: ${produced}; members: ${afterStorm.members}`,
  );
  assert.equal(notices.length, 0, JSON.stringify(notices.slice(0, 5)));
  assert.equal(produced, 0, JSON.stringify({ before: before.events, after: afterStorm.events }));
  assert.equal(afterStorm.members, USERS + 1);

  for (const s of sockets) s.destroy();
  await closeWs(observer);
});

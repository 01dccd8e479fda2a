// Subscribing through a Redis-backed sidecar (a page, no cursor, a fresh subscription),
// over each transport:
//  * head: on a channel that already has history, the page gets the messages published
//    after it subscribed, not the old ones (protocol: "A subscription without a cursor
//    starts at the channel's current head");
//  * race: once the page is subscribed (its transport open, the position announced),
//    a message published at once reaches it — also when the sidecar's link to Redis is
//    slow (a proxy delays it by 300 ms), i.e. while the sidecar is still reading the
//    channel from Redis.
// The sidecar reads a channel from Redis when it gets its first local subscriber; a
// stream's own open notice (or SSE id) names such a channel ".0" until then and the
// subscription really starts once the read completes, so comet.js asks for the heads
// first (a wait=0 poll, which waits for the read) and opens streams with a cursor.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  compact,
  demoState,
  demoSummary,
  launchBrowser,
  openDemo,
  publish,
  startRedis,
  startSidecar,
  waitOpen,
  waitSubscribed,
  waitUntil,
} from './lib/harness.mjs';
import { startDelayProxy } from './lib/proxy.mjs';

const TRANSPORTS = ['websocket', 'sse', 'xhr-stream', 'iframe', 'long-poll', 'poll'];
let redis;
let browser;

before(async () => {
  redis = await startRedis();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await redis?.stop();
});

/** Opens the demo on `ch` over `transport` and waits until the page says it is subscribed. */
async function subscribedPage(context, sidecar, ch, transport) {
  const page = await openDemo(context, sidecar.url, { ch, transport, poll: '100', open: '5000' });
  await waitOpen(page, transport);
  await waitSubscribed(page, [ch]);
  return page;
}

async function receivedIds(page, count, what) {
  await waitUntil(() => page.evaluate((n) => window.cometDemo.received.length >= n, count), {
    timeoutMs: 8000,
    what,
    detail: async () => JSON.stringify(await demoSummary(page)),
  });
  return (await demoState(page)).received.map((m) => m.id);
}

describe('a fresh subscriber to a channel with history starts at its head', () => {
  let sidecar;
  before(async () => {
    sidecar = await startSidecar(['--redis', redis.url, '--heartbeat', '1s', '--workers', '1']);
  });
  after(async () => {
    await sidecar?.stop();
  });
  for (const transport of TRANSPORTS) {
    test(transport, async () => {
      const ch = `head-${transport}`;
      for (let i = 1; i <= 5; i++) await publish(sidecar.url, ch, `old ${i}`);
      const context = await browser.newContext();
      try {
        const page = await subscribedPage(context, sidecar, ch, transport);
        const fresh = [];
        for (let i = 1; i <= 20; i++) fresh.push((await publish(sidecar.url, ch, `new ${i}`)).id);
        const got = await receivedIds(page, 20, '20 messages');
        assert.deepEqual(got, fresh, `received ids ${compact(got)}; want ${compact(fresh)}`);
      } finally {
        await context.close();
      }
    });
  }
});

describe('a message published right after the page subscribed reaches it (slow Redis link)', () => {
  let proxy;
  let sidecar;
  let publisher;
  before(async () => {
    proxy = await startDelayProxy(redis.port, 300);
    sidecar = await startSidecar(['--redis', `redis://127.0.0.1:${proxy.port}`, '--heartbeat', '1s', '--workers', '1']);
    publisher = await startSidecar(['--redis', redis.url, '--workers', '1']);
  });
  after(async () => {
    await sidecar?.stop();
    await publisher?.stop();
    await proxy?.close();
  });
  for (const transport of TRANSPORTS) {
    test(transport, async () => {
      const ch = `race-${transport}`;
      const context = await browser.newContext();
      try {
        const page = await subscribedPage(context, sidecar, ch, transport);
        const ids = [];
        for (let i = 1; i <= 5; i++) ids.push((await publish(publisher.url, ch, `m ${i}`)).id);
        const got = await receivedIds(page, 5, '5 messages');
        assert.deepEqual(got, ids, `received ids ${compact(got)}; want ${compact(ids)}`);
      } finally {
        await context.close();
      }
    });
  }
});

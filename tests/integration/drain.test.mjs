// SIGTERM drains without losing an answer: publishes already sent to Redis are answered
// before their connection closes (the message is stored, so an unanswered publish is one
// the app counts as failed although it went out), and from the moment the drain begins
// new connections are refused (safe for a proxy to retry elsewhere), never accepted by
// the kernel and reset unanswered at exit.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { RedisServer, startRedisSidecar } from './lib/redis.mjs';
import { delay, startSidecar, uniqueChannel, waitUntil } from './lib/sidecar.mjs';

describe('drain on SIGTERM', () => {
  let redis;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.stop();
  });

  test('publishes in flight at SIGTERM are all answered: answered = stored', async () => {
    for (let round = 0; round < 3; round++) {
      const sc = await startRedisSidecar(redis, ['--workers', '1']);
      const ch = uniqueChannel(`drain${round}`);
      const clients = [];
      for (let c = 0; c < 20; c++) {
        const socket = net.connect(sc.publishPort, '127.0.0.1');
        const client = { socket, bytes: '' };
        socket.setEncoding('latin1');
        socket.on('data', (d) => {
          client.bytes += d;
        });
        socket.on('error', () => {});
        client.closed = new Promise((resolve) => socket.on('close', resolve));
        await new Promise((resolve) => socket.on('connect', resolve));
        clients.push(client);
      }
      // 20 connections x 32 pipelined publishes, then SIGTERM while Redis answers them.
      const one = `POST /pub/${ch} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi`;
      for (const { socket } of clients) socket.write(one.repeat(32));
      // SIGTERM as soon as the first answers arrive: the rest are in flight (on a loaded
      // machine a fixed pause could end before the sidecar has read anything).
      await waitUntil(() => clients.some((c) => c.bytes.includes('HTTP/1.1 200')), {
        intervalMs: 1,
        what: 'the first publish answer',
      });
      sc.child.kill('SIGTERM');
      const exit = await sc.exited;
      await Promise.all(clients.map((c) => c.closed));
      const answered = clients.reduce((n, c) => n + (c.bytes.match(/HTTP\/1\.1 200 /g) ?? []).length, 0);
      const refused = clients.reduce((n, c) => n + (c.bytes.match(/HTTP\/1\.1 [45]\d\d /g) ?? []).length, 0);
      const conn = await redis.client();
      const stored = Number(await conn.command('XLEN', `comet:{${ch}}:log`));
      conn.close();
      console.log(`drain round ${round}: sent 640, stored ${stored}, answered 200 ${answered}, refused ${refused}`);
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(stored > 0, 'some publishes were in flight');
      assert.equal(answered, stored, 'every stored message was acknowledged, and only those');
    }
  });

  test('once the drain has begun, new connections are refused, not accepted and reset', async () => {
    // Room for the output the reader leaves unread (the kernel's buffers take megabytes).
    const sc = await startSidecar(['--workers', '1', '--max-output-bytes', '64m', '--max-output-soft-bytes', '64m']);
    const ch = uniqueChannel('drain-hold');
    // A WebSocket reader that stops reading with output queued keeps the drain busy for
    // its whole second (its goodbye cannot be flushed): the window to probe in.
    const reader = net.connect(sc.port, '127.0.0.1');
    reader.on('error', () => {});
    await new Promise((resolve) => reader.on('connect', resolve));
    reader.write(
      `GET /ws?ch=${ch} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await new Promise((resolve) => reader.once('data', resolve));
    reader.pause();
    const big = 'x'.repeat(60000);
    for (let i = 0; i < 250; i++) {
      const res = await fetch(`http://127.0.0.1:${sc.publishPort}/pub/${ch}`, { method: 'POST', body: big });
      assert.equal(res.status, 200);
    }
    sc.child.kill('SIGTERM');
    await delay(100); // the drain reached the worker
    const outcomes = [];
    for (let i = 0; i < 10 && sc.exit === null; i++) {
      outcomes.push(
        await new Promise((resolve) => {
          const s = net.connect(sc.port, '127.0.0.1');
          let connected = false;
          s.on('connect', () => {
            connected = true;
            s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
          });
          s.on('error', (err) => resolve(connected ? `connected, then ${err.code}` : err.code));
          s.on('close', () => resolve(connected ? 'connected, then closed' : 'closed'));
        }),
      );
      await delay(50);
    }
    reader.destroy();
    await sc.exited;
    assert.ok(outcomes.length >= 3, `the drain lasted long enough to probe (${outcomes.length} probes)`);
    assert.deepEqual(new Set(outcomes), new Set(['ECONNREFUSED']), `probes during the drain: ${outcomes.join(', ')}`);
  });
});

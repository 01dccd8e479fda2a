#!/usr/bin/env node
// What presence across sidecars costs Redis while nothing changes (docs/performance.md,
// "Presence on Redis"): two sidecars on one Redis, CHANNELS presence channels with one
// member of each sidecar in every channel (one WebSocket per sidecar subscribed to all
// of them), then SECONDS idle seconds. Prints one JSON line: the Redis commands per
// second the sidecars sent (by command) and Redis' CPU time for them (µs per second).
//
//   node tests/bench/presence-redis-load.mjs [--bin build-rel/sidecar/comet-sidecar]
//        [--channels 1000] [--seconds 30]

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const CHANNELS = Number(option('--channels', '1000'));
const SECONDS = Number(option('--seconds', '30'));
process.env.COMET_SIDECAR_BIN = path.resolve(option('--bin', path.join(here, '../../build-rel/sidecar/comet-sidecar')));
const SECRET = 'presence-load-secret';
// After COMET_SIDECAR_BIN is set: the helpers read it when loaded.
const { openWs, sendJson } = await import('../integration/lib/clients.mjs');
const { RedisServer, startRedisSidecar } = await import('../integration/lib/redis.mjs');
const { delay, waitUntil } = await import('../integration/lib/sidecar.mjs');
const { tokenFor } = await import('../integration/lib/tokens.mjs');

const redis = await RedisServer.start();
const sidecars = [];
const sockets = [];
try {
  const channels = Array.from({ length: CHANNELS }, (_, i) => `presence:load-${i}`);
  for (let s = 0; s < 2; s++) {
    const sc = await startRedisSidecar(redis, ['--token-secret', SECRET, '--max-channels', String(CHANNELS)]);
    sidecars.push(sc);
    const ws = await openWs(`${sc.wsUrl}/ws?token=${tokenFor(['presence:*'], SECRET, { sub: `user-${s}` })}`);
    sockets.push(ws);
    for (let i = 0; i < CHANNELS; i += 100) sendJson(ws, { cmd: 'sub', ch: channels.slice(i, i + 100) });
  }
  const client = await redis.client();
  await waitUntil(async () => Number(await client.command('HLEN', `comet:{${channels.at(-1)}}:presence:count`)) === 2, {
    timeoutMs: 60000,
    what: 'both members in the last channel',
  });
  await delay(16000); // past the first due times and a few refreshes: the steady state
  await client.command('CONFIG', 'RESETSTAT');
  await delay(SECONDS * 1000);
  const info = await client.command('INFO', 'commandstats');
  const perSecond = {};
  let usec = 0;
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/gm)) {
    if (m[1] === 'info' || m[1] === 'config|resetstat') continue;
    perSecond[m[1]] = Math.round((Number(m[2]) / SECONDS) * 10) / 10;
    usec += Number(m[3]);
  }
  const members = Number(await client.command('HLEN', `comet:{${channels[0]}}:presence:count`));
  console.log(
    JSON.stringify({
      channels: CHANNELS,
      sidecars: 2,
      seconds: SECONDS,
      members_per_channel: members,
      commands_per_second: perSecond,
      redis_cpu_us_per_second: Math.round(usec / SECONDS),
    }),
  );
  client.close();
} finally {
  for (const ws of sockets) ws.terminate?.();
  for (const sc of sidecars) sc.kill();
  await redis.stop();
}

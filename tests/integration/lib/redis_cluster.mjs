// A real Redis Cluster for the integration tests (redis_cluster.test.mjs): N masters with
// R replicas each, every node a redis-server on free loopback ports (client port and
// cluster bus port) in its own temp dir, created with `redis-cli --cluster create`.
// Helpers: the sidecar's seed URL, slot arithmetic (CRC16-XMODEM with hash tags, as
// Redis), who owns a slot, a live slot migration (IMPORTING/MIGRATING, MIGRATE in
// batches, SETSLOT NODE on every master) and a master SIGKILLed until its replica is
// promoted. Every process is SIGKILLed on stop() and, whatever happens, when the test
// process exits.

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { waitUntil, withTimeout } from './async.mjs';
import { killGroup } from './processes.mjs';
import { freePort, REDIS_SERVER_BIN, RedisError, redisStarted, RespClient } from './redis.mjs';

export const REDIS_CLI_BIN = process.env.REDIS_CLI_BIN || 'redis-cli';
export const SLOTS = 16384;

// ---------------------------------------------------------------------------------
// Slots

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

/** CRC16-XMODEM (polynomial 0x1021, init 0), as Redis Cluster's key hashing. */
export function crc16(buf) {
  let crc = 0;
  for (const byte of buf) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

/** The hash slot of a key: its hash tag ({...}, first '{' to the next '}', non-empty) or the whole key. */
export function slotOf(key) {
  let buf = Buffer.from(String(key), 'utf8');
  const open = buf.indexOf('{');
  if (open >= 0) {
    const close = buf.indexOf('}', open + 1);
    if (close > open + 1) buf = buf.subarray(open + 1, close);
  }
  return crc16(buf) % SLOTS;
}

/** The slot of a comet channel's keys and pub/sub channel (comet:{<ch>}...). */
export function channelSlot(ch) {
  return slotOf(`comet:{${ch}}`);
}

// ---------------------------------------------------------------------------------
// Processes

const liveChildren = new Set();
const liveDirs = new Set();
process.on('exit', () => {
  for (const child of liveChildren) killGroup(child);
  for (const dir of liveDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});

function run(bin, args, { timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\n$ ${bin} ${args.join(' ')}\n${stdout}\n${stderr}`;
        reject(err);
      } else {
        resolve(stdout + stderr);
      }
    });
  });
}

/** One cluster node: a redis-server with --cluster-enabled yes. */
export class ClusterNode {
  constructor(port, busPort, dir, extraArgs) {
    this.port = port;
    this.busPort = busPort;
    this.dir = dir;
    this.extraArgs = extraArgs;
    this.child = null;
    this.exited = null;
    this.id = null; // CLUSTER MYID, once known
    this.conn = null; // a cached RespClient for command()
  }

  get addr() {
    return `127.0.0.1:${this.port}`;
  }

  get running() {
    return this.child !== null;
  }

  get log() {
    const file = path.join(this.dir, 'redis.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  async spawn(nodeTimeoutMs) {
    const args = [
      '--port', String(this.port),
      '--cluster-port', String(this.busPort),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--logfile', 'redis.log',
      '--daemonize', 'no',
      '--protected-mode', 'no',
      '--save', '',
      '--appendonly', 'no',
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', String(nodeTimeoutMs),
      // A replica may always take over (however long ago it last heard its master),
      // and its first sync starts at once.
      '--cluster-replica-validity-factor', '0',
      '--repl-diskless-sync', 'yes',
      '--repl-diskless-sync-delay', '0',
      ...this.extraArgs,
    ];
    // Its own process group: killGroup() takes it down whatever it started.
    const child = spawn(REDIS_SERVER_BIN, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: this.dir, detached: true });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    liveChildren.add(child);
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        liveChildren.delete(child);
        if (this.child === child) this.child = null;
        resolve({ code, signal });
      });
    });
    try {
      await redisStarted(child, this.exited, this.port, {
        name: `cluster node :${this.port}`,
        details: () => `${stderr}\n${this.log}`,
      });
    } catch (err) {
      this.kill();
      throw err;
    }
    this.id = await this.command('CLUSTER', 'MYID');
  }

  /** One command on the node's cached connection (reconnecting if it was lost). */
  async command(...args) {
    if (this.conn === null || this.conn.closedError !== null) {
      this.conn?.close();
      this.conn = await RespClient.connect(this.port, '127.0.0.1', { timeoutMs: 2000 });
    }
    return withTimeout(this.conn.command(...args), 10000, `${args.slice(0, 3).join(' ')} on :${this.port}`);
  }

  /** A command that resolves with the error instead of rejecting (and null when unreachable). */
  async tryCommand(...args) {
    try {
      return await this.command(...args);
    } catch (err) {
      return err instanceof RedisError ? err : null;
    }
  }

  /** SIGKILL (the whole process group) and wait for the exit. */
  async kill() {
    this.conn?.close();
    this.conn = null;
    if (this.child === null) return;
    const exited = this.exited;
    killGroup(this.child);
    await withTimeout(exited, 10000, `cluster node :${this.port} to exit after SIGKILL`);
  }
}

// ---------------------------------------------------------------------------------
// The cluster

/** Parses CLUSTER NODES into [{id, addr, port, flags:Set, masterId, linkState, slots:[[a,b]]}]. */
export function parseClusterNodes(text) {
  const out = [];
  for (const line of String(text).split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const addr = f[1].split('@')[0];
    const slots = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue; // [slot->-id] migration marks
      const [a, b] = s.split('-').map(Number);
      slots.push([a, b ?? a]);
    }
    out.push({
      id: f[0],
      addr,
      port: Number(addr.split(':')[1]),
      flags: new Set(f[2].split(',')),
      masterId: f[3] === '-' ? null : f[3],
      linkState: f[7],
      slots,
    });
  }
  return out;
}

export class RedisCluster {
  /**
   * Starts `masters` masters with `replicas` replicas each and creates the cluster.
   * `nodeTimeoutMs` is cluster-node-timeout (failure detection).
   */
  static async start({ masters = 3, replicas = 1, nodeTimeoutMs = 1000, extraArgs = [] } = {}) {
    const cluster = new RedisCluster(nodeTimeoutMs);
    try {
      await cluster.#start(masters, replicas, extraArgs);
    } catch (err) {
      await cluster.stop().catch(() => {});
      throw err;
    }
    return cluster;
  }

  constructor(nodeTimeoutMs) {
    this.nodeTimeoutMs = nodeTimeoutMs;
    this.nodes = [];
    this.dirs = [];
    this.createOutput = '';
  }

  async #start(masters, replicas, extraArgs) {
    const count = masters * (1 + replicas);
    for (let i = 0; i < count; i++) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'comet-cluster-'));
      liveDirs.add(dir);
      this.dirs.push(dir);
      let lastError;
      for (let attempt = 0; attempt < 5; attempt++) {
        const node = new ClusterNode(await freePort(), await freePort(), dir, extraArgs);
        try {
          await node.spawn(this.nodeTimeoutMs);
          this.nodes.push(node);
          lastError = null;
          break;
        } catch (err) {
          lastError = err;
        }
      }
      if (lastError) throw lastError;
    }
    if (count === 1) {
      // redis-cli wants 3 masters at least: a single node takes every slot by itself.
      expectOk(await this.nodes[0].command('CLUSTER', 'ADDSLOTSRANGE', 0, SLOTS - 1), 'ADDSLOTSRANGE');
    } else {
      this.createOutput = await run(REDIS_CLI_BIN, [
        '--cluster', 'create', ...this.nodes.map((n) => n.addr),
        '--cluster-replicas', String(replicas), '--cluster-yes',
      ]);
    }
    await waitUntil(() => this.#healthy(masters), {
      timeoutMs: 20000,
      intervalMs: 50,
      what: `the cluster to be ready (every node cluster_state:ok, 16384 slots, replicas in sync)\n${this.createOutput}`,
    });
  }

  /** Every live node: cluster_state:ok, all slots ok, the same slot map; replicas linked. */
  async #healthy(expectMasters) {
    const maps = new Set();
    for (const n of this.live()) {
      const info = await n.tryCommand('CLUSTER', 'INFO');
      if (typeof info !== 'string') return false;
      if (!/cluster_state:ok/.test(info) || !new RegExp(`cluster_slots_ok:${SLOTS}\\b`).test(info)) return false;
      const slots = await n.tryCommand('CLUSTER', 'SLOTS');
      if (!Array.isArray(slots)) return false;
      maps.add(JSON.stringify(slots.map((r) => [r[0], r[1], Number(r[2][1])]).sort((a, b) => a[0] - b[0])));
      const repl = await n.tryCommand('INFO', 'replication');
      if (typeof repl !== 'string') return false;
      if (/role:slave/.test(repl) && !/master_link_status:up/.test(repl)) return false;
    }
    if (maps.size !== 1) return false;
    if (expectMasters !== undefined && (await this.masters()).length !== expectMasters) return false;
    return true;
  }

  /** Nodes whose process runs. */
  live() {
    return this.nodes.filter((n) => n.running);
  }

  byPort(port) {
    const n = this.nodes.find((x) => x.port === Number(port));
    if (!n) throw new Error(`no cluster node on port ${port}`);
    return n;
  }

  byId(id) {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no cluster node with id ${id}`);
    return n;
  }

  /** redis+cluster://127.0.0.1:P1,127.0.0.1:P2,... (the masters, or `nodes`). */
  seedUrl(nodes = null) {
    return `redis+cluster://${(nodes ?? this.nodes).map((n) => n.addr).join(',')}`;
  }

  /** CLUSTER NODES as one live node sees it. */
  async view(asked = null) {
    const n = asked ?? this.live()[0];
    return parseClusterNodes(await n.command('CLUSTER', 'NODES'));
  }

  /** The live masters that own slots (per CLUSTER NODES of a live node), sorted by port. */
  async masters() {
    const view = await this.view();
    return view
      .filter((v) => v.flags.has('master') && !v.flags.has('fail') && v.slots.length > 0)
      .map((v) => this.byPort(v.port))
      .filter((n) => n.running)
      .sort((a, b) => a.port - b.port);
  }

  /** The replicas of `master` (per CLUSTER NODES). */
  async replicasOf(master) {
    const view = await this.view();
    return view.filter((v) => v.masterId === master.id).map((v) => this.byPort(v.port));
  }

  /** slot -> owner node, for all 16384 slots (CLUSTER SLOTS of `asked`). */
  async slotMap(asked = null) {
    const n = asked ?? (await this.masters())[0];
    const map = new Array(SLOTS).fill(null);
    for (const r of await n.command('CLUSTER', 'SLOTS')) {
      const owner = this.byPort(r[2][1]);
      for (let s = r[0]; s <= r[1]; s++) map[s] = owner;
    }
    return map;
  }

  /** The master owning `slot`. */
  async ownerOfSlot(slot) {
    return (await this.slotMap())[slot];
  }

  /**
   * Live migration of `slots` from `from` to `to`, one slot after the other: IMPORTING on
   * `to`, MIGRATING on `from`, keys moved with MIGRATE `batch` at a time (so a channel's
   * three keys may be split for a moment: TRYAGAIN), then SETSLOT NODE on `to`, `from` and
   * every other master. `pauseMs` between slots spreads the migration over time;
   * `stepPauseMs` holds each intermediate state (MIGRATING with every key still at the
   * source, after each MIGRATE batch, every key moved but the slot not yet reassigned) so
   * that commands meet ASK and TRYAGAIN. `onSlot(slot)` is called as a slot starts.
   * Returns the number of keys moved.
   */
  async migrateSlots(from, to, slots, { batch = 10, pauseMs = 0, stepPauseMs = 0, onSlot = () => {} } = {}) {
    const hold = () => (stepPauseMs > 0 ? new Promise((resolve) => setTimeout(resolve, stepPauseMs)) : null);
    const others = (await this.masters()).filter((m) => m !== to && m !== from);
    let moved = 0;
    for (const slot of slots) {
      onSlot(slot);
      expectOk(await to.command('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id), `IMPORTING ${slot}`);
      expectOk(await from.command('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id), `MIGRATING ${slot}`);
      await hold();
      for (let round = 0; round < 10000; round++) {
        const keys = await from.command('CLUSTER', 'GETKEYSINSLOT', slot, batch);
        if (keys.length === 0) break;
        const reply = await from.command('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys);
        if (reply !== 'OK' && reply !== 'NOKEY') throw new Error(`MIGRATE of slot ${slot}: ${JSON.stringify(reply)}`);
        moved += keys.length;
        await hold();
      }
      expectOk(await to.command('CLUSTER', 'SETSLOT', slot, 'NODE', to.id), `SETSLOT ${slot} NODE on the target`);
      expectOk(await from.command('CLUSTER', 'SETSLOT', slot, 'NODE', to.id), `SETSLOT ${slot} NODE on the source`);
      for (const m of others) expectOk(await m.command('CLUSTER', 'SETSLOT', slot, 'NODE', to.id), `SETSLOT ${slot} NODE`);
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    return moved;
  }

  /** `redis-cli --cluster reshard`: moves `count` slots (redis-cli picks them) from one master to another. */
  async reshard(from, to, count) {
    return run(REDIS_CLI_BIN, [
      '--cluster', 'reshard', from.addr, '--cluster-from', from.id, '--cluster-to', to.id,
      '--cluster-slots', String(count), '--cluster-yes',
    ]);
  }

  /**
   * SIGKILLs `master` and waits until one of its replicas is a master owning slots and
   * every live node says cluster_state:ok with all slots covered. Returns
   * {promoted, failoverMs}.
   */
  async killMaster(master, { timeoutMs = 20000 } = {}) {
    const replicas = await this.replicasOf(master);
    if (replicas.length === 0) throw new Error(`master :${master.port} has no replica`);
    const t0 = performance.now();
    await master.kill();
    let promoted = null;
    await waitUntil(
      async () => {
        for (const r of replicas) {
          const role = await r.tryCommand('ROLE');
          if (Array.isArray(role) && role[0] === 'master') promoted = r;
        }
        return promoted !== null && (await this.#healthy().catch(() => false));
      },
      { timeoutMs, intervalMs: 25, what: `a replica of :${master.port} to be promoted and the cluster to be ok` },
    );
    return { promoted, failoverMs: Math.round(performance.now() - t0) };
  }

  /** PUBSUB SHARDNUMSUB of `channels` on `node`: Map channel -> count (null if unreachable). */
  async shardNumSub(node, channels) {
    const reply = await node.tryCommand('PUBSUB', 'SHARDNUMSUB', ...channels);
    if (!Array.isArray(reply)) return null;
    const out = new Map();
    for (let i = 0; i < reply.length; i += 2) out.set(reply[i], Number(reply[i + 1]));
    return out;
  }

  /** Kills every node and removes the dirs. Safe to call twice. */
  async stop() {
    await Promise.all(this.nodes.map((n) => n.kill().catch(() => {})));
    for (const dir of this.dirs) {
      rmSync(dir, { recursive: true, force: true });
      liveDirs.delete(dir);
    }
    this.dirs = [];
  }
}

function expectOk(reply, what) {
  if (reply !== 'OK') throw new Error(`${what}: expected OK, got ${JSON.stringify(reply)}`);
}

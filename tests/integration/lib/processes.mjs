// What a test needs to run a third-party server (nginx, Apache, HAProxy) as a child
// process: find its binary, tell when it listens, and kill its whole process group.
// No dependencies, so the browser tests import it too.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

/** $envName, else `name` on PATH, else the first existing candidate; null if none. */
export function findBinary(envName, name, candidates = []) {
  if (process.env[envName]) return process.env[envName];
  try {
    const found = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (found) return found;
  } catch {
    // not on PATH
  }
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** True once something accepts connections on 127.0.0.1:`port`. */
export function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** SIGKILL to the process group of `child` (spawned detached), or to it alone. */
export function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

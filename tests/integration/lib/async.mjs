// Small async helpers: bounded waits and a queue that tests await items from.
// Every wait has a timeout, so a missing event fails the test instead of hanging it.

/** Resolves with `promise`, or rejects after `ms` with a message naming what was awaited. */
export function withTimeout(promise, ms, what = 'operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve/reject exposed. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Polls `fn` until it returns a truthy value (which is returned). For conditions only
 * observable by asking (e.g. a /healthz counter); events should be awaited directly.
 */
export async function waitUntil(fn, { timeoutMs = 10000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * Items arrive with push(); tests take them in order or wait for a count. `closed`
 * makes pending and later waits fail fast with the close reason.
 */
export class Queue {
  constructor(name = 'queue') {
    this.name = name;
    this.items = [];
    this.readIndex = 0;
    this.waiters = [];
    this.closedReason = null;
  }

  push(item) {
    this.items.push(item);
    this.#wake();
  }

  close(reason = 'closed') {
    if (this.closedReason === null) this.closedReason = reason;
    this.#wake();
  }

  /** Items not yet taken. */
  get pending() {
    return this.items.length - this.readIndex;
  }

  /** The next item (optionally the next matching `filter`, skipping others). */
  async take(timeoutMs = 5000, filter = null) {
    for (;;) {
      while (this.readIndex < this.items.length) {
        const item = this.items[this.readIndex++];
        if (!filter || filter(item)) return item;
      }
      await this.#waitChange(timeoutMs, `the next item of ${this.name}`);
    }
  }

  /** Takes exactly `n` items (matching `filter`, others skipped). */
  async takeN(n, timeoutMs = 5000, filter = null) {
    const deadline = Date.now() + timeoutMs;
    const out = [];
    while (out.length < n) {
      const left = Math.max(1, deadline - Date.now());
      try {
        out.push(await this.take(left, filter));
      } catch (err) {
        err.message += ` (got ${out.length} of ${n}: ${JSON.stringify(out).slice(0, 2000)})`;
        throw err;
      }
    }
    return out;
  }

  /** Waits until `predicate(allItems)` holds, without consuming anything. */
  async waitFor(predicate, timeoutMs = 5000, what = 'a condition') {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.items)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} on ${this.name}`);
      await this.#waitChange(left, what);
    }
    return this.items;
  }

  #wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  #waitChange(timeoutMs, what) {
    if (this.closedReason !== null) {
      return Promise.reject(new Error(`${this.name} closed (${this.closedReason}) while waiting for ${what}`));
    }
    return withTimeout(
      new Promise((resolve) => this.waiters.push(resolve)),
      timeoutMs,
      `${what} (${this.name} has ${this.items.length} items)`,
    );
  }
}

/** Resolves after `ms`: only for deliberately letting time pass (e.g. proving nothing arrives). */
export function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

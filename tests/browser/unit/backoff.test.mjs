// Jittered exponential backoff.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { I } from './load.mjs';

const opts = { min: 500, max: 30000, factor: 2, jitter: 0.5 };

test('grows exponentially up to the cap', () => {
  const top = (n) => I.backoffDelay(n, opts, () => 0); // no jitter drawn: the upper bound
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 20, 1000].map(top), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
});

test('jitter stays within [d * (1 - jitter), d]', () => {
  for (let attempt = 0; attempt < 10; attempt++) {
    const d = Math.min(30000, 500 * 2 ** attempt);
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const v = I.backoffDelay(attempt, opts, () => r);
      assert.ok(v <= d && v >= d * 0.5, `attempt ${attempt} r ${r}: ${v}`);
    }
  }
  // Math.random by default: spread out, never above the bound.
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    const v = I.backoffDelay(3, opts);
    assert.ok(v >= 2000 && v <= 4000);
    seen.add(v);
  }
  assert.ok(seen.size > 50, 'jitter spreads reconnects');
});

test('defaults and partial options', () => {
  assert.equal(I.backoffDelay(0, undefined, () => 0), 500);
  assert.equal(I.backoffDelay(2, { min: 100 }, () => 0), 400);
  assert.equal(I.backoffDelay(10, { min: 100, max: 1000 }, () => 0), 1000);
  assert.equal(I.backoffDelay(-3, opts, () => 0), 500);
});

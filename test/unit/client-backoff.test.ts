import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffCeiling, backoffDelay, shutdownDelay } from '../../packages/client/src/backoff.ts';

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const opts = { baseMs: 500, maxMs: 30_000 };

test('ceiling doubles per attempt and stops at maxMs', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffCeiling(n, opts)), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal(backoffCeiling(0, opts), 500, 'attempt < 1 counts as the first');
  assert.equal(backoffCeiling(10_000, opts), 30_000, 'no overflow for huge attempts');
});

test('full jitter: integer delays within [0, ceiling), spread over the window', () => {
  const rnd = prng(42);
  for (let attempt = 1; attempt <= 12; attempt++) {
    const ceiling = backoffCeiling(attempt, opts);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 2000; i++) {
      const d = backoffDelay(attempt, opts, rnd);
      assert.ok(Number.isInteger(d) && d >= 0 && d < ceiling, `attempt ${attempt}: ${d} not in [0, ${ceiling})`);
      min = Math.min(min, d);
      max = Math.max(max, d);
    }
    // Full jitter, not equal jitter: both ends of the window are used.
    assert.ok(min < ceiling * 0.05, `attempt ${attempt}: low end used (${min})`);
    assert.ok(max > ceiling * 0.95, `attempt ${attempt}: high end used (${max})`);
  }
});

test('extreme random values stay in bounds', () => {
  for (const r of [0, 1, 0.9999999999, -1, 2, Number.NaN]) {
    const d = backoffDelay(3, opts, () => r);
    assert.ok(d >= 0 && d < 2000, `random ${r} → ${d}`);
  }
  assert.equal(backoffDelay(1, { baseMs: 0, maxMs: 0 }, () => 0.5), 0);
});

test('shutdown delay honours the server delay plus bounded jitter', () => {
  const rnd = prng(7);
  for (let i = 0; i < 1000; i++) {
    const d = shutdownDelay(1200, 500, rnd);
    assert.ok(d >= 1200 && d < 1700, String(d));
  }
  assert.equal(shutdownDelay(0, 0, () => 0.9), 0);
  assert.ok(shutdownDelay(Number.NaN, 100, () => 0.5) === 50, 'a bad server value counts as 0');
  assert.ok(shutdownDelay(-5, 100, () => 0) === 0);
});

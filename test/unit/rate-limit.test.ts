import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/events/rate-limit.ts';

test('a burst is allowed, then the rate', () => {
  const b = new TokenBucket(10, 3, 0);
  assert.deepEqual([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false]);
  assert.equal(b.take(50), false, '0.5 token after 50 ms');
  assert.equal(b.take(100), true, 'one token after 100 ms at 10/s');
  assert.equal(b.take(100), false);
});

test('tokens never exceed the burst however long the pause', () => {
  const b = new TokenBucket(100, 2, 0);
  const taken = [0, 0, 0].map(() => b.take(1_000_000)).filter(Boolean).length;
  assert.equal(taken, 2);
});

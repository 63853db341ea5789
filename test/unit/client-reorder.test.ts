import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReorderBuffer } from '../../packages/client/src/reorder.ts';

/** mulberry32: a small seeded PRNG so every failure is reproducible from its seed. */
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

function shuffle<T>(xs: T[], rnd: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Expected holes: maximal missing ranges in (applied, max(present)]. */
function expectedHoles(applied: number, present: Set<number>): { from: number; to: number }[] {
  const max = Math.max(applied, ...present);
  const holes: { from: number; to: number }[] = [];
  let start: number | null = null;
  for (let s = applied + 1; s <= max; s++) {
    if (!present.has(s)) start ??= s;
    else if (start !== null) {
      holes.push({ from: start, to: s - 1 });
      start = null;
    }
  }
  return holes;
}

test('random permutations with duplicates and missing seqs: strictly increasing, each seq once, exact holes', () => {
  for (let iteration = 0; iteration < 2000; iteration++) {
    const seed = 0x5eed + iteration;
    const rnd = prng(seed);
    const base = Math.floor(rnd() * 5) * 10; // the last applied seq before this window
    const n = 1 + Math.floor(rnd() * 60);
    const missing = new Set<number>();
    for (let s = base + 1; s <= base + n; s++) if (rnd() < 0.15) missing.add(s);
    const input: number[] = [];
    for (let s = base + 1; s <= base + n; s++) {
      if (missing.has(s)) continue;
      const copies = rnd() < 0.25 ? 2 + Math.floor(rnd() * 3) : 1;
      for (let c = 0; c < copies; c++) input.push(s);
    }
    // Stale events (at or below the baseline) must be dropped too.
    for (let k = 0; k < 3 && base > 0; k++) input.push(1 + Math.floor(rnd() * base));
    shuffle(input, rnd);

    const buf = new ReorderBuffer<string>(base);
    const released: number[] = [];
    for (const s of input) {
      buf.push(s, `e${s}`);
      for (const r of buf.drain()) {
        assert.equal(r.item, `e${r.seq}`, `seed ${seed}: payload travels with its seq`);
        released.push(r.seq);
      }
    }
    const present = new Set(input.filter((s) => s > base));
    const firstMissing = [...missing].sort((a, b) => a - b).find((s) => s <= Math.max(...present, base)) ?? null;
    const releasedUpTo = firstMissing === null ? Math.max(base, ...present) : firstMissing - 1;
    assert.deepEqual(released, Array.from({ length: releasedUpTo - base }, (_, i) => base + 1 + i), `seed ${seed}: consecutive run released in order`);
    assert.equal(buf.applied, releasedUpTo, `seed ${seed}`);
    assert.deepEqual(buf.holes(), expectedHoles(releasedUpTo, new Set([...present].filter((s) => s > releasedUpTo))), `seed ${seed}: holes`);
    assert.equal(buf.hasHole, buf.size > 0, `seed ${seed}: held events imply a hole`);

    // Filling the holes (in random order, with more duplicates) releases the rest exactly once.
    const fill = shuffle([...missing, ...missing, ...present], rnd);
    for (const s of fill) {
      buf.push(s, `e${s}`);
      for (const r of buf.drain()) released.push(r.seq);
    }
    assert.deepEqual(released, Array.from({ length: n }, (_, i) => base + 1 + i), `seed ${seed}: every seq once, in order`);
    assert.deepEqual(buf.holes(), []);
    assert.equal(buf.size, 0);
  }
});

test('push reports duplicates and stale seqs', () => {
  const buf = new ReorderBuffer<number>(5);
  assert.equal(buf.push(5, 5), 'duplicate');
  assert.equal(buf.push(3, 3), 'duplicate');
  assert.equal(buf.push(7, 7), 'buffered');
  assert.equal(buf.push(7, 7), 'duplicate');
  assert.deepEqual(buf.drain(), []);
  assert.deepEqual(buf.holes(), [{ from: 6, to: 6 }]);
  assert.equal(buf.highest, 7);
  buf.push(6, 6);
  assert.deepEqual(buf.drain().map((r) => r.seq), [6, 7]);
  assert.equal(buf.push(6, 6), 'duplicate');
});

test('reset moves the baseline, keeps later events, drops covered ones', () => {
  const buf = new ReorderBuffer<number>(0);
  for (const s of [3, 5, 9, 10]) buf.push(s, s);
  assert.equal(buf.reset(5), 2);
  assert.equal(buf.applied, 5);
  assert.deepEqual(buf.holes(), [{ from: 6, to: 8 }]);
  for (const s of [8, 7, 6]) buf.push(s, s);
  assert.deepEqual(buf.drain().map((r) => r.seq), [6, 7, 8, 9, 10]);
  // A recreated room: the baseline may move backwards.
  buf.reset(2);
  assert.equal(buf.applied, 2);
  assert.equal(buf.size, 0);
});

test('rejects seqs that are not non-negative safe integers', () => {
  const buf = new ReorderBuffer<number>(0);
  assert.throws(() => buf.push(1.5, 0), RangeError);
  assert.throws(() => buf.push(-1, 0), RangeError);
  assert.throws(() => buf.push(Number.NaN, 0), RangeError);
  assert.throws(() => new ReorderBuffer(-1), RangeError);
});

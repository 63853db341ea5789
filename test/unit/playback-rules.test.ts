import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_REPORTED_RTT_MS, clampRtt, nextSyncTick } from '../../src/playback/rules.ts';
import { playbackAt } from '../../src/rooms/model.ts';

test('reported RTTs are rounded and clamped', () => {
  assert.equal(clampRtt(-5), 0);
  assert.equal(clampRtt(12.6), 13);
  assert.equal(clampRtt(59_999), MAX_REPORTED_RTT_MS);
  assert.equal(clampRtt(Number.NaN), MAX_REPORTED_RTT_MS);
});

// Who may control playback and the sync buffer are decided by the Lua scripts alone: see
// test/integration/stores.test.ts, which runs them against a real Redis.

test('drift-sync ticks keep the cadence of the anchor', () => {
  const anchor = 1_000_000;
  // First tick: one interval after the start instant, even though the command ran before it.
  assert.deepEqual(nextSyncTick(anchor, 10_000, 0, anchor - 300), { tick: 1, delayMs: 10_300 });
  // A tick processed 40 ms late schedules the next on the grid, not 10 s after itself.
  assert.deepEqual(nextSyncTick(anchor, 10_000, 1, anchor + 10_040), { tick: 2, delayMs: 9_960 });
});

test('a held-up chain skips missed ticks instead of bursting', () => {
  const anchor = 0;
  // Tick 3 ran 30 s late (a stalled job recovered): next is due ≥ half an interval later.
  const next = nextSyncTick(anchor, 500, 3, 31_900);
  assert.ok(next.delayMs >= 250, `delay ${next.delayMs}`);
  assert.ok(next.delayMs <= 750);
  assert.equal(anchor + next.tick * 500 - 31_900, next.delayMs);
  // Never a tick at or before the one just done.
  assert.equal(nextSyncTick(anchor, 500, 10, 0).tick, 11);
});

test('playbackAt: the stored command → position at any server time', () => {
  const stored = { playing: '1', trackId: 't1', positionMs: '5000', startAtServerTime: '10000', syncBufferMs: '200' };
  assert.equal(playbackAt(stored, 9_900).positionMs, 5000, 'holds until the start instant');
  assert.equal(playbackAt(stored, 12_500).positionMs, 7500);
  assert.equal(playbackAt({ ...stored, playing: '0' }, 12_500).positionMs, 5000, 'paused does not advance');
  assert.deepEqual(playbackAt({ trackId: '', gen: '3' }, 1).trackId, null, 'stopped is idle');
  assert.equal(playbackAt({ trackId: '', gen: '3' }, 1).playing, false);
});

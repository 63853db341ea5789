import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClockSync, clockSample, driftMs, msUntilEffective, positionAt, shouldApplySync } from '../../packages/client/src/playback.ts';
import { playbackAt } from '../../src/rooms/model.ts';

/** An exchange where the server clock is `theta` ahead, one-way delays `up`/`down`, server holds `hold`. */
function exchange(t0: number, theta: number, up: number, down: number, hold = 1): [number, number, number, number] {
  const t1 = t0 + up + theta;
  const t2 = t1 + hold;
  const t3 = t2 - theta + down;
  return [t0, t1, t2, t3];
}

test('NTP math: symmetric delays recover the offset exactly', () => {
  const s = clockSample(...exchange(1000, 250, 20, 20, 3))!;
  assert.equal(s.offsetMs, 250);
  assert.equal(s.rttMs, 40, 'server hold time is excluded');
});

test('NTP math: asymmetric delays bias the offset by half the asymmetry', () => {
  const s = clockSample(...exchange(1000, -400, 80, 20))!;
  assert.equal(s.rttMs, 100);
  assert.equal(s.offsetMs, -400 + (80 - 20) / 2);
  assert.ok(Math.abs(s.offsetMs - -400) <= s.rttMs / 2, 'error bounded by rtt/2');
});

test('inconsistent samples are rejected', () => {
  assert.equal(clockSample(1000, 500, 600, 900), null, 'negative rtt');
  assert.equal(clockSample(1000, 600, 500, 1200), null, 'server answered before it received');
  assert.equal(clockSample(Number.NaN, 1, 2, 3), null);
});

test('ClockSync prefers low-RTT samples: congested samples with skewed delays do not move the estimate', () => {
  const theta = 1234;
  const sync = new ClockSync({ window: 8, best: 3 });
  let t = 0;
  // Clean samples: 10 ms each way, tiny jitter.
  for (const [up, down] of [[10, 11], [11, 10], [10, 10]] as const) sync.add(...exchange((t += 1000), theta, up, down));
  // Congested uplink: offsets biased by +100..+200 ms, but with big RTTs.
  for (const up of [210, 300, 410, 250, 390]) sync.add(...exchange((t += 1000), theta, up, 10));
  assert.ok(Math.abs(sync.offsetMs - theta) <= 1, `offset ${sync.offsetMs}`);
  assert.ok(sync.rttMs! <= 21);
  assert.equal(sync.serverNow(50_000), 50_000 + sync.offsetMs);
  assert.equal(sync.localTimeOf(sync.serverNow(7)), 7);
});

test('ClockSync forgets samples beyond its window', () => {
  const sync = new ClockSync({ window: 3, best: 3 });
  sync.add(...exchange(0, 100, 5, 5));
  for (let i = 1; i <= 3; i++) sync.add(...exchange(i * 1000, 900, 5, 5));
  assert.equal(sync.sampleCount, 3);
  assert.equal(sync.offsetMs, 900, 'the clock moved; the old sample is gone');
  assert.deepEqual(sync.report('r1'), { roomId: 'r1', rttMs: 10, offsetMs: 900 });
});

test('ClockSync before any sample', () => {
  const sync = new ClockSync();
  assert.equal(sync.offsetMs, 0);
  assert.equal(sync.rttMs, null);
  assert.equal(sync.report(), null);
  assert.equal(sync.addPong({ clientTimestamp: 10, serverReceiveTimestamp: 5, serverTimestamp: 6 }, 11)!.rttMs, 0);
});

test('positionAt: a start event holds until startAtServerTime, then advances', () => {
  const ev = { playing: true, positionMs: 30_000, serverTimestamp: 1000, startAtServerTime: 1200 };
  assert.equal(positionAt(ev, 1100), 30_000);
  assert.equal(positionAt(ev, 1200), 30_000);
  assert.equal(positionAt(ev, 4200), 33_000);
  assert.equal(msUntilEffective(ev, 1100), 100);
  assert.equal(positionAt({ ...ev, playing: false }, 9999), 30_000);
});

test('positionAt agrees with the server snapshot (playbackAt) at every instant', () => {
  const stored = { playing: '1', trackId: 't', positionMs: '1000', startAtServerTime: '5000', syncBufferMs: '150' };
  for (const snapAt of [4900, 5000, 7000]) {
    const snap = playbackAt(stored, snapAt);
    for (const later of [snapAt, snapAt + 1, snapAt + 2500]) {
      assert.equal(positionAt(snap, later), playbackAt(stored, later).positionMs, `snapshot at ${snapAt}, read at ${later}`);
    }
  }
});

test('syncs: apply only to the state they were computed for; drift sign', () => {
  const state = { playing: true, trackId: 't', startAtServerTime: 1000 };
  const sync = { roomId: 'r', trackId: 't', positionMs: 5000, serverTimestamp: 6000 };
  assert.equal(shouldApplySync(state, sync), true);
  assert.equal(shouldApplySync({ ...state, playing: false }, sync), false);
  assert.equal(shouldApplySync({ ...state, trackId: 'other' }, sync), false);
  assert.equal(shouldApplySync({ ...state, startAtServerTime: 6500 }, sync), false, 'a sync from before the last seek');
  assert.equal(driftMs(5130, sync, 6100), 30, 'ahead by 30 ms');
  assert.equal(driftMs(5050, sync, 6100), -50);
});

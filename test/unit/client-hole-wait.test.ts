import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOLE_WAIT_HALF_LIFE_MS, HoleWait } from '../../packages/client/src/hole-wait.ts';
import { entry, logEntry, scriptedRoom, state } from '../helpers/scripted-room.ts';

test('HoleWait: the floor until something is late; then twice the lateness, capped, halving every half-life; jitter adds 0–50 %', () => {
  let now = 1_000_000;
  let r = 0;
  const w = new HoleWait(300, 5000, () => now, () => r);
  assert.equal(w.baseMs, 300);
  w.observe(100); // twice 100 is under the floor
  assert.equal(w.baseMs, 300);
  w.observe(400);
  assert.equal(w.baseMs, 800);
  w.observe(200); // smaller than what is remembered: the larger stays
  assert.equal(w.baseMs, 800);
  now += HOLE_WAIT_HALF_LIFE_MS;
  assert.equal(w.baseMs, 400);
  now += 10 * HOLE_WAIT_HALF_LIFE_MS;
  assert.equal(w.baseMs, 300, 'back to the floor once nothing has been late for a while');
  w.observe(60_000);
  assert.equal(w.baseMs, 5000, 'capped');
  assert.equal(w.next(), 5000);
  r = 0.999;
  assert.equal(w.next(), Math.round(5000 * 1.4995));
  w.observe(-5);
  w.observe(Number.NaN);
  assert.equal(w.baseMs, 5000, 'nonsense lateness is ignored');
});

function clockedRoom(handlers: Parameters<typeof scriptedRoom>[0], settings: Parameters<typeof scriptedRoom>[1] = {}) {
  const clock = { now: 5_000_000 };
  const h = scriptedRoom(handlers, { holeWaitMs: 10, now: () => clock.now, ...settings });
  const seen: number[] = [];
  h.room.on('event', (e: { seq: number }) => seen.push(e.seq));
  const wait = () => (h.room as unknown as { sync: { holeWaitMs: number } }).sync.holeWaitMs;
  const catchups = () => h.calls.filter((c) => c.event === 'room:catchup').length;
  return { ...h, clock, seen, wait, catchups };
}

test('a hole a late broadcast fills teaches the wait: the next hole waits twice that long before catching up', async () => {
  const h = clockedRoom({
    'room:join': () => ({ ...state(1), self: null }),
    'room:catchup': (p: { fromSeq: number }) => ({ roomId: 'ABCDEFGH', recovered: true, more: false, seq: 5, events: [4, 5].filter((s) => s > p.fromSeq).map(logEntry) }),
  });
  h.room.resume();
  await h.room.ready();
  await sleep(5);
  h.room.receive(entry(3)); // 2 is missing: the hole is seen now
  h.clock.now += 60;
  h.room.receive(entry(2)); // ... and filled 60 ms later by the broadcast itself
  assert.deepEqual(h.seen, [2, 3]);
  assert.equal(h.wait(), 120);
  assert.equal(h.catchups(), 0);

  // The next hole waits 120 ms (+25 % jitter with random() = 0.5), not the 10 ms floor.
  h.room.receive(entry(5));
  await sleep(60);
  assert.equal(h.catchups(), 0, 'caught up before the learned wait ran out');
  await sleep(200);
  assert.equal(h.catchups(), 1);
  assert.deepEqual(h.seen, [2, 3, 4, 5]);
});

test('events a catch-up fetched that then arrive live count as late: the wait grows (up to holeWaitMaxMs)', async () => {
  const h = clockedRoom(
    {
      'room:join': () => ({ ...state(1), self: null }),
      'room:catchup': (p: { fromSeq: number }) => ({ roomId: 'ABCDEFGH', recovered: true, more: false, seq: 3, events: [2, 3].filter((s) => s > p.fromSeq).map(logEntry) }),
    },
    { holeWaitMaxMs: 500 },
  );
  h.room.resume();
  await h.room.ready();
  await sleep(5);
  h.room.receive(entry(3));
  await sleep(40); // the 10 ms floor runs out: catch-up fetches 2
  assert.equal(h.catchups(), 1);
  assert.deepEqual(h.seen, [2, 3]);
  assert.equal(h.wait(), 10, 'nothing learned yet');
  h.clock.now += 400;
  h.room.receive(entry(2)); // the broadcast of 2, 400 ms after its hole was seen
  assert.deepEqual(h.seen, [2, 3], 'delivered once');
  assert.equal(h.wait(), 500, 'twice 400, capped at holeWaitMaxMs');
  // Long after the catch-up, a copy is a resend, not a measure of lateness.
  h.clock.now += 60_000;
  h.room.receive(entry(3));
  assert.ok(h.wait() < 500, 'decayed, not raised again');
});

/**
 * Issue #11 point 5 in the SDK, with a scripted server: a room handle holds its first state and
 * its events until the app listens, so `const room = await client.join(code); room.on(…)` — or a
 * listener attached later, in another task — sees the first state and then every event from
 * joinSeq + 1, exactly once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { entry, logEntry, nextTask, scriptedRoom, state } from '../helpers/scripted-room.ts';

/** A join whose ack comes with events before it (raced) and after it (the same read). */
function joinWithTraffic(afterAck: number[], settings = {}) {
  return scriptedRoom(
    {
      'room:join': (_p, room) => {
        room.receive(entry(5)); // broadcast before the ack: already in the state
        room.receive(entry(6));
        // Parsed from the same read as the ack, after it: before any continuation of the caller.
        queueMicrotask(() => afterAck.forEach((s) => room.receive(entry(s))));
        return { ...state(5), self: null };
      },
    },
    settings,
  );
}

test('listeners attached after `await join()` get the first state, then joinSeq+1.., nothing lost', async () => {
  const h = joinWithTraffic([7, 8]);
  h.room.resume();
  const room = await h.room.ready();
  const got: string[] = [];
  assert.equal(room.seq, 5, 'nothing applied before the app listens: seq is the join state');
  room.on('state', (s) => void got.push(`state@${s.seq}`));
  room.on('event', (e) => void got.push(`#${e.seq}`));
  room.receive(entry(9));
  assert.deepEqual(got, [], 'not in the task that attached the listeners');
  await nextTask();
  assert.deepEqual(got, ['state@5', '#6', '#7', '#8', '#9']);
  room.receive(entry(10));
  assert.deepEqual(got.at(-1), '#10', 'then live, synchronously');
});

test('every listener attached in the same task counts, through awaits of settled promises', async () => {
  const h = joinWithTraffic([7]);
  h.room.resume();
  const room = await h.room.ready();
  const events: number[] = [];
  const seq: number[] = [];
  room.on('event', (e) => void events.push(e.seq));
  await Promise.resolve();
  await (async () => undefined)();
  room.on('sequenced', (e) => void seq.push(e.seq));
  await nextTask();
  assert.deepEqual(events, [6, 7]);
  assert.deepEqual(seq, [6, 7]);
});

test('a listener attached in a later task (an effect, after I/O) still gets everything', async () => {
  const h = joinWithTraffic([7, 8]);
  h.room.resume();
  const room = await h.room.ready();
  await sleep(30); // e.g. a render and an effect, or a fetch
  room.receive(entry(9));
  const got: number[] = [];
  const states: number[] = [];
  room.on('state', (s) => void states.push(s.seq));
  room.on('event', (e) => void got.push(e.seq));
  await nextTask();
  assert.deepEqual(states, [5]);
  assert.deepEqual(got, [6, 7, 8, 9]);
});

test('an app that never listens gets delivery after deliveryHoldMs (getters advance, buffer drains)', async () => {
  const h = joinWithTraffic([7], { deliveryHoldMs: 40 });
  h.room.resume();
  const room = await h.room.ready();
  await nextTask();
  assert.equal(room.seq, 5);
  await sleep(80);
  assert.equal(room.seq, 7);
  room.receive(entry(8));
  assert.equal(room.seq, 8);
});

test('listeners attached before the join resolves: delivered as they come (nothing held)', async () => {
  const h = joinWithTraffic([7]);
  const got: string[] = [];
  h.room.on('state', (s) => void got.push(`state@${s.seq}`));
  h.room.on('event', (e) => void got.push(`#${e.seq}`));
  h.room.resume();
  await h.room.ready();
  assert.deepEqual(got, ['state@5', '#6', '#7'], 'no macrotask needed');
});

test('a hole while delivery is held is filled from the held run, not from the applied seq', async () => {
  const h = scriptedRoom({
    'room:join': () => ({ ...state(5), self: null }),
    'room:catchup': (p: { fromSeq: number }) => ({ roomId: 'ABCDEFGH', recovered: true, more: false, seq: 9, incarnation: 'inc-A', events: [7, 8, 9].filter((s) => s > p.fromSeq).map(logEntry) }),
  });
  h.room.resume();
  const room = await h.room.ready();
  room.receive(entry(6));
  room.receive(entry(9)); // 7, 8 missing
  await sleep(40);
  assert.deepEqual(h.calls.filter((c) => c.event === 'room:catchup').map((c) => c.payload.fromSeq), [6], 'from the held run (6), not from 5');
  assert.equal(room.seq, 5, 'still held');
  const got: number[] = [];
  room.on('event', (e) => void got.push(e.seq));
  await nextTask();
  assert.deepEqual(got, [6, 7, 8, 9]);
});

test('a reconnect while held: no resumed before the app saw anything; then state and the replay', async () => {
  const h = scriptedRoom({
    'room:join': () => ({ ...state(5), self: null }),
    'room:rejoin': (p: { lastSeq?: number }, room) => {
      if (p.lastSeq === 6) room.receive(entry(7));
      return { roomId: 'ABCDEFGH', recovered: true, replayed: 1, more: false, seq: 7, incarnation: 'inc-A' };
    },
  });
  h.room.resume();
  const room = await h.room.ready();
  room.receive(entry(6));
  h.reconnect();
  await sleep(20);
  assert.equal(h.calls.find((c) => c.event === 'room:rejoin')!.payload.lastSeq, 6, 'the rejoin presents the held run');
  const got: string[] = [];
  const resumed: boolean[] = [];
  room.on('resumed', (r) => void resumed.push(r.recovered));
  room.on('state', (s) => void got.push(`state@${s.seq}`));
  room.on('event', (e) => void got.push(`#${e.seq}`));
  await nextTask();
  assert.deepEqual(got, ['state@5', '#6', '#7']);
  assert.deepEqual(resumed, [], 'the reconnect happened before the app saw anything: its first view is the state');
  h.reconnect();
  await sleep(20);
  assert.deepEqual(resumed, [true], 'once flowing, resumed as before');
});

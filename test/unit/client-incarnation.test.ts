/**
 * Issue #11 points 6/7 in the SDK, with a scripted server: every position the SDK presents is
 * (incarnation, seq); a changed incarnation — in a snapshot, a rejoin, a catch-up or a room:head —
 * resets the room to a snapshot with `resumed {recovered:false}`; a room:head above what the room
 * holds is filled with room:catchup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { entry, logEntry, ROOM, scriptedRoom, state } from '../helpers/scripted-room.ts';
import type { Room } from '../../packages/client/src/room.ts';

function watch(room: Room) {
  const got: string[] = [];
  room.on('state', (s) => void got.push(`state@${s.seq}/${s.incarnation}`));
  room.on('event', (e) => void got.push(`#${e.seq}`));
  room.on('resumed', (r) => void got.push(`resumed:${r.recovered}`));
  return got;
}
const catchupOf = (incarnation: string, upTo: number) => (p: { fromSeq: number }) => ({
  roomId: ROOM, recovered: true, more: false, seq: upTo, incarnation,
  events: Array.from({ length: Math.max(0, upTo - p.fromSeq) }, (_, i) => logEntry(p.fromSeq + 1 + i)),
});

test('a reconnect presents (incarnation, seq); a recreated room answers with a snapshot: state replaced, old held events dropped', async () => {
  const h = scriptedRoom({
    'room:join': () => ({ ...state(10, 'inc-A'), self: null }),
    'room:rejoin': (p: { lastSeq?: number; incarnation?: string }, room) => {
      // The room expired and was created again: its seq restarted under inc-B.
      room.receiveSnapshot({ ...state(3, 'inc-B'), recovered: false });
      return { roomId: ROOM, recovered: false, replayed: 0, more: false, seq: 3, incarnation: 'inc-B' };
    },
  });
  const got = watch(h.room);
  h.room.resume();
  await h.room.ready();
  assert.equal(h.room.incarnation, 'inc-A');
  h.room.receive(entry(12)); // held behind a hole (11) when the connection drops
  h.reconnect();
  await sleep(20);
  assert.deepEqual(h.calls.find((c) => c.event === 'room:rejoin')!.payload, { roomId: ROOM, lastSeq: 10, incarnation: 'inc-A' });
  assert.deepEqual(got, ['state@10/inc-A', 'state@3/inc-B', 'resumed:false']);
  assert.equal(h.room.incarnation, 'inc-B');
  assert.equal(h.room.seq, 3);
  h.room.receive(entry(4));
  await sleep(30);
  assert.deepEqual(got.slice(3), ['#4'], 'the new life continues from its snapshot; the old #12 is gone');
});

test('catch-up presents the incarnation; an answer from another incarnation resyncs from a snapshot', async () => {
  let life = 'inc-A';
  const h = scriptedRoom({
    'room:join': () => ({ ...state(0, 'inc-A'), self: null }),
    'room:catchup': (p: { fromSeq: number }) => catchupOf(life, 9)(p),
    'room:rejoin': (p: { lastSeq?: number }, room) => {
      assert.equal(p.lastSeq, undefined, 'a resync asks for a snapshot outright');
      room.receiveSnapshot({ ...state(9, life), recovered: false });
      return { roomId: ROOM, recovered: false, replayed: 0, more: false, seq: 9, incarnation: life };
    },
  });
  const got = watch(h.room);
  h.room.resume();
  await h.room.ready();
  life = 'inc-B'; // recreated between our last event and the catch-up
  h.room.receive(entry(1));
  h.room.receive(entry(3));
  await sleep(60);
  assert.deepEqual(h.calls.find((c) => c.event === 'room:catchup')!.payload, { roomId: ROOM, fromSeq: 1, incarnation: 'inc-A', limit: 100 });
  assert.deepEqual(got, ['state@0/inc-A', '#1', 'state@9/inc-B', 'resumed:false']);
  assert.equal(h.room.incarnation, 'inc-B');
});

test('a rejoin that replays another incarnation (recovered: true) is not trusted: snapshot instead', async () => {
  const h = scriptedRoom({
    'room:join': () => ({ ...state(5, 'inc-A'), self: null }),
    'room:rejoin': (p: { lastSeq?: number }, room) => {
      if (p.lastSeq !== undefined) {
        room.receive(entry(6)); // replayed from inc-B's log: must not be applied
        return { roomId: ROOM, recovered: true, replayed: 1, more: false, seq: 6, incarnation: 'inc-B' };
      }
      room.receiveSnapshot({ ...state(6, 'inc-B'), recovered: false });
      return { roomId: ROOM, recovered: false, replayed: 0, more: false, seq: 6, incarnation: 'inc-B' };
    },
  });
  const got = watch(h.room);
  h.room.resume();
  await h.room.ready();
  h.reconnect();
  await sleep(30);
  assert.deepEqual(h.calls.filter((c) => c.event === 'room:rejoin').map((c) => c.payload.lastSeq), [5, undefined]);
  assert.deepEqual(got, ['state@5/inc-A', 'state@6/inc-B', 'resumed:false']);
});

test('room:head above what the room holds: filled with room:catchup after holeWaitMs, no resync', async () => {
  const h = scriptedRoom({
    'room:join': () => ({ ...state(4, 'inc-A'), self: null }),
    'room:catchup': catchupOf('inc-A', 7),
  });
  const got = watch(h.room);
  h.room.resume();
  await h.room.ready();
  h.room.receive(entry(5));
  // #6 and #7 were appended but their broadcasts were lost; nothing else happens in the room.
  h.room.receiveHead({ roomId: ROOM, incarnation: 'inc-A', seq: 7 });
  assert.deepEqual(got, ['state@4/inc-A', '#5'], 'not at once: a broadcast racing the head may still come');
  await sleep(60);
  assert.deepEqual(h.calls.filter((c) => c.event === 'room:catchup').map((c) => c.payload.fromSeq), [5]);
  assert.deepEqual(got, ['state@4/inc-A', '#5', '#6', '#7']);
});

test('room:head answered by the late broadcast in time needs no catch-up; a head at or below the room is ignored', async () => {
  const h = scriptedRoom({ 'room:join': () => ({ ...state(4, 'inc-A'), self: null }) }, { holeWaitMs: 40 });
  const got = watch(h.room);
  h.room.resume();
  await h.room.ready();
  h.room.receiveHead({ roomId: ROOM, incarnation: 'inc-A', seq: 5 });
  h.room.receive(entry(5));
  h.room.receiveHead({ roomId: ROOM, incarnation: 'inc-A', seq: 5 });
  h.room.receiveHead({ roomId: ROOM, incarnation: 'inc-A', seq: 3 });
  await sleep(80);
  assert.deepEqual(got, ['state@4/inc-A', '#5']);
  assert.equal(h.calls.filter((c) => c.event !== 'room:join').length, 0);
});

test('room:head of another incarnation: rejoin without lastSeq, snapshot, resumed {recovered:false}', async () => {
  const h = scriptedRoom({
    'room:join': () => ({ ...state(8, 'inc-A'), self: null }),
    'room:rejoin': (p: { lastSeq?: number }, room) => {
      assert.equal(p.lastSeq, undefined);
      room.receiveSnapshot({ ...state(2, 'inc-B'), recovered: false });
      return { roomId: ROOM, recovered: false, replayed: 0, more: false, seq: 2, incarnation: 'inc-B' };
    },
  });
  const got = watch(h.room);
  h.room.resume();
  await h.room.ready();
  h.room.receiveHead({ roomId: ROOM, incarnation: 'inc-B', seq: 2 });
  await sleep(20);
  assert.deepEqual(got, ['state@8/inc-A', 'state@2/inc-B', 'resumed:false']);
  h.room.receive(entry(3));
  assert.deepEqual(got.at(-1), '#3');
  assert.equal(h.room.status, 'live');
});

test('room:head while the room is not live (offline, syncing) is ignored', async () => {
  let answer!: () => void;
  const h = scriptedRoom({
    'room:join': () => ({ ...state(1, 'inc-A'), self: null }),
    'room:rejoin': () => new Promise((resolve) => (answer = () => resolve({ roomId: ROOM, recovered: true, replayed: 0, more: false, seq: 1, incarnation: 'inc-A' }))),
  });
  watch(h.room);
  h.room.resume();
  await h.room.ready();
  h.room.onDisconnected();
  h.room.receiveHead({ roomId: ROOM, incarnation: 'inc-Z', seq: 9 });
  h.host.connEpoch++;
  h.room.resume();
  h.room.receiveHead({ roomId: ROOM, incarnation: 'inc-Z', seq: 9 });
  await sleep(10);
  answer();
  await sleep(30);
  assert.deepEqual(h.calls.filter((c) => c.event === 'room:rejoin').length, 1, 'only the reconnect rejoin');
  assert.equal(h.calls.filter((c) => c.event === 'room:catchup').length, 0);
});

test('a server that sends no incarnation: positions go without one, heads are taken at their seq', async () => {
  const legacy = { ...state(2), incarnation: undefined as unknown as string };
  const h = scriptedRoom({
    'room:join': () => ({ ...legacy, self: null }),
    'room:rejoin': () => ({ roomId: ROOM, recovered: true, replayed: 0, more: false, seq: 2 }),
    'room:catchup': (p: { fromSeq: number }) => ({ ...catchupOf('x', 3)(p), incarnation: undefined }),
  });
  watch(h.room);
  h.room.resume();
  await h.room.ready();
  assert.equal(h.room.incarnation, null);
  h.reconnect();
  await sleep(20);
  assert.deepEqual(h.calls.find((c) => c.event === 'room:rejoin')!.payload, { roomId: ROOM, lastSeq: 2 });
  h.room.receiveHead({ roomId: ROOM, incarnation: 'whatever', seq: 3 });
  await sleep(40);
  assert.deepEqual(h.calls.find((c) => c.event === 'room:catchup')!.payload, { roomId: ROOM, fromSeq: 2, limit: 100 });
  assert.equal(h.room.seq, 3);
});

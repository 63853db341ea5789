import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Room, type RoomHost } from '../../packages/client/src/room.ts';
import { ClientError } from '../../packages/client/src/errors.ts';
import type { RoomEvent, RoomStatePayload } from '@tether/protocol';

/** A Room driven by a scripted server: `handlers[event](payload, room)` answers each request. */
function harness(handlers: Record<string, (payload: any, room: Room) => unknown>) {
  const calls: { event: string; payload: any }[] = [];
  let room!: Room;
  const host: RoomHost = {
    connEpoch: 1,
    connected: true,
    clientId: 'me-000000',
    settings: { holeWaitMs: 10, catchupLimit: 100, retry: { baseMs: 5, maxMs: 20 }, rejoinAfterEviction: true, random: () => 0.5 },
    async request(event, payload) {
      calls.push({ event, payload });
      const h = handlers[event];
      if (!h) throw new ClientError('INTERNAL_ERROR', `no handler for ${event}`);
      return (await h(payload, room)) as never;
    },
    newMessageId: () => `m${calls.length}`,
    roomClosed: () => undefined,
    queueLeave: () => undefined,
    serverNow: () => Date.now(),
    roomLive: () => undefined,
  };
  room = new Room(host, 'ABCDEFGH', 'room');
  const seen: number[] = [];
  const resumed: boolean[] = [];
  room.on('event', (e) => void seen.push(e.seq));
  room.on('resumed', (r) => void resumed.push(r.recovered));
  return { room, calls, seen, resumed, host };
}

const state = (seq: number): RoomStatePayload => ({
  room: { id: 'ABCDEFGH', code: 'ABCDEFGH', name: 'r', kind: 'room', maxParticipants: 10, hasPassword: false, createdAt: 0, hostClientId: null },
  participants: [],
  playback: { playing: false, trackId: null, positionMs: 0, serverTimestamp: 0, startAtServerTime: null, syncBufferMs: 0 },
  seq,
  serverTimestamp: 0,
});
const ev = (seq: number): RoomEvent => ({ roomId: 'ABCDEFGH', seq, type: 't', data: seq, from: 'x', ts: 0 });
const entry = (seq: number) => ({ name: 'room:event' as const, seq, payload: ev(seq) });

test('join baseline: events that raced the join ack are kept above the state seq, dropped below', async () => {
  const h = harness({
    'room:join': (_p, room) => {
      room.receive(entry(4)); // broadcast before the ack: already in the state
      room.receive(entry(6));
      room.receive(entry(7));
      return { ...state(5), self: null };
    },
  });
  h.room.resume();
  await h.room.ready();
  assert.deepEqual(h.seen, [6, 7]);
  assert.equal(h.room.seq, 7);
});

test('a hole waits, then is fetched with room:catchup; broadcasts and pages overlap without duplicates', async () => {
  const h = harness({
    'room:join': () => ({ ...state(0), self: null }),
    'room:catchup': (p: { fromSeq: number }) => ({ roomId: 'ABCDEFGH', recovered: true, more: false, seq: 6, events: [2, 3, 4, 5, 6].filter((s) => s > p.fromSeq).map((s) => ({ ...entry(s), ts: 0 })) }),
  });
  h.room.resume();
  await h.room.ready();
  for (const s of [1, 5, 1, 6]) h.room.receive(entry(s));
  assert.deepEqual(h.seen, [1]);
  await sleep(50);
  assert.deepEqual(h.seen, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(h.calls.filter((c) => c.event === 'room:catchup').map((c) => c.payload.fromSeq), [1]);
});

test('a hole filled by a late broadcast needs no catch-up', async () => {
  const h = harness({ 'room:join': () => ({ ...state(0), self: null }) });
  h.room.resume();
  await h.room.ready();
  h.room.receive(entry(2));
  h.room.receive(entry(1));
  await sleep(30);
  assert.deepEqual(h.seen, [1, 2]);
  assert.equal(h.calls.filter((c) => c.event === 'room:catchup').length, 0);
});

test('catch-up beyond the log: snapshot through room:rejoin, resumed {recovered:false}', async () => {
  const h = harness({
    'room:join': () => ({ ...state(0), self: null }),
    'room:catchup': () => ({ roomId: 'ABCDEFGH', recovered: false, more: false, seq: 50, events: [] }),
    'room:rejoin': (p: { lastSeq?: number }, room) => {
      assert.equal(p.lastSeq, undefined, 'a resync asks for a snapshot outright');
      room.receiveSnapshot({ ...state(48), recovered: false });
      return { roomId: 'ABCDEFGH', recovered: false, replayed: 0, more: false, seq: 48 };
    },
  });
  h.room.resume();
  await h.room.ready();
  h.room.receive(entry(49));
  h.room.receive(entry(50));
  await sleep(60);
  assert.deepEqual(h.resumed, [false]);
  assert.deepEqual(h.seen, [49, 50], 'events after the snapshot survive it');
  assert.equal(h.room.seq, 50);
});

test('reconnect: rejoin from the applied seq, replay paged with catch-up when more', async () => {
  const h = harness({
    'room:join': () => ({ ...state(3), self: null }),
    'room:rejoin': (p: { lastSeq?: number }, room) => {
      assert.equal(p.lastSeq, 3);
      for (const s of [4, 5]) room.receive(entry(s));
      return { roomId: 'ABCDEFGH', recovered: true, replayed: 2, more: true, seq: 8 };
    },
    'room:catchup': (p: { fromSeq: number }) => ({ roomId: 'ABCDEFGH', recovered: true, more: false, seq: 8, events: [6, 7, 8].filter((s) => s > p.fromSeq).map((s) => ({ ...entry(s), ts: 0 })) }),
  });
  h.room.resume();
  await h.room.ready();
  h.room.onDisconnected();
  (h.host as { connEpoch: number }).connEpoch = 2;
  h.room.resume();
  await sleep(30);
  assert.deepEqual(h.resumed, [true]);
  assert.deepEqual(h.seen, [4, 5, 6, 7, 8]);
});

test('outbox: FIFO, one in flight, RATE_LIMITED retried with the same clientMsgId', async () => {
  const sentIds: string[] = [];
  let refused = false;
  const h = harness({
    'room:join': () => ({ ...state(0), self: null }),
    'room:publish': (p: { clientMsgId: string }) => {
      sentIds.push(p.clientMsgId);
      if (!refused) {
        refused = true;
        throw new ClientError('RATE_LIMITED');
      }
      return { seq: sentIds.length, duplicate: false };
    },
  });
  const a = h.room.publish('t', 1);
  const b = h.room.publish('t', 2);
  assert.equal(a.status, 'pending');
  h.room.resume();
  await h.room.ready();
  await Promise.all([a.sent(), b.sent()]);
  assert.deepEqual(sentIds, [a.clientMsgId, a.clientMsgId, b.clientMsgId]);
  assert.equal(a.status, 'sent');
  assert.equal(b.seq, 3);
});

test('a first join refused by the server rejects join and closes the handle', async () => {
  const h = harness({ 'room:join': () => Promise.reject(new ClientError('ROOM_NOT_FOUND')) });
  const m = h.room.publish('t', 1);
  h.room.resume();
  await assert.rejects(h.room.ready(), (e: ClientError) => e.code === 'ROOM_NOT_FOUND');
  assert.equal(h.room.status, 'closed');
  await assert.rejects(m.sent(), (e: ClientError) => e.code === 'ROOM_NOT_FOUND');
});

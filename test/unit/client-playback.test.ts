/**
 * Room playback state in the SDK, driven by a scripted server (the client-room.test.ts harness):
 * sequenced playback events go through the reorder buffer, playback:sync is filtered by
 * shouldApplySync, control methods feed their acks, positions come from the host's server clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Room, type RoomHost } from '../../packages/client/src/room.ts';
import { ClientError } from '../../packages/client/src/errors.ts';
import type { Participant, PlaybackEvent, PlaybackState, PlaybackSync, RoomStatePayload } from '@tether/protocol';
import type { SequencedEntry } from '../../packages/client/src/types.ts';

const ROOM = 'ABCDEFGH';
const ME = 'me-000000';

function harness(handlers: Record<string, (payload: any, room: Room) => unknown>) {
  const calls: { event: string; payload: any }[] = [];
  let room!: Room;
  const clock = { now: 1_000_000 };
  const live: number[] = [];
  const host: RoomHost = {
    connEpoch: 1,
    connected: true,
    clientId: ME,
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
    serverNow: () => clock.now,
    roomLive: () => void live.push(room.seq),
  };
  room = new Room(host, ROOM, 'room');
  const playback: PlaybackEvent[] = [];
  const syncs: PlaybackSync[] = [];
  room.on('playback', (e) => void playback.push(e));
  room.on('playback:sync', (s) => void syncs.push(s));
  return { room, calls, host, clock, playback, syncs, live };
}

const idle: PlaybackState = { playing: false, trackId: null, positionMs: 0, serverTimestamp: 0, startAtServerTime: null, syncBufferMs: 0 };
const member = (clientId: string, role: Participant['role'] = 'member', canControl = false): Participant => ({
  clientId, userId: null, name: clientId, role, status: 'online', canControl, joinedAt: 0,
});
const state = (seq: number, playback: PlaybackState = idle, participants: Participant[] = [member(ME)]): RoomStatePayload => ({
  room: { id: ROOM, code: ROOM, name: 'r', kind: 'room', maxParticipants: 10, hasPassword: false, createdAt: 0, hostClientId: null },
  participants,
  playback,
  seq,
  serverTimestamp: playback.serverTimestamp,
});
function pb(seq: number, action: PlaybackEvent['action'], o: Partial<PlaybackEvent> = {}): PlaybackEvent {
  const serverTimestamp = o.serverTimestamp ?? 1_000_000;
  const syncBufferMs = o.syncBufferMs ?? 200;
  return {
    roomId: ROOM, seq, action, by: 'host-0000',
    playing: action === 'start' || (action === 'seek' && (o.playing ?? true)),
    trackId: action === 'stop' ? null : 'track-1',
    positionMs: 0,
    serverTimestamp,
    startAtServerTime: serverTimestamp + syncBufferMs,
    syncBufferMs,
    ...o,
  };
}
const entryOf = (e: PlaybackEvent): SequencedEntry => ({ name: `playback:${e.action}`, seq: e.seq, payload: e }) as SequencedEntry;

test('playback events go through the reorder buffer: out-of-order arrival applies in seq order', async () => {
  const h = harness({ 'room:join': () => ({ ...state(0), self: member(ME) }) });
  h.room.resume();
  await h.room.ready();
  assert.deepEqual(h.live, [0], 'roomLive reported once the baseline is in');
  const start = pb(1, 'start', { positionMs: 1000 });
  const pause = pb(2, 'pause', { playing: false, positionMs: 5000, serverTimestamp: 1_004_000 });
  h.room.receive(entryOf(pause)); // overtook the start
  assert.equal(h.room.playback!.playing, false);
  assert.equal(h.playback.length, 0, 'held until seq 1 arrives');
  h.room.receive(entryOf(start));
  h.room.receive(entryOf(start)); // duplicate broadcast
  assert.deepEqual(h.playback.map((e) => e.action), ['start', 'pause']);
  assert.deepEqual(h.room.playback, { playing: false, trackId: 'track-1', positionMs: 5000, serverTimestamp: 1_004_000, startAtServerTime: 1_004_200, syncBufferMs: 200 });
  assert.equal(h.room.seq, 2);
});

test('positions: frozen before startAtServerTime, 1 ms per server ms after, frozen when paused', async () => {
  const h = harness({ 'room:join': () => ({ ...state(0), self: member(ME) }) });
  h.room.resume();
  await h.room.ready();
  assert.equal(h.room.currentPosition(), 0, 'idle room');
  h.room.receive(entryOf(pb(1, 'start', { positionMs: 30_000, serverTimestamp: 1_000_000, syncBufferMs: 250 })));
  h.clock.now = 1_000_100; // the command has not taken effect yet
  assert.equal(h.room.currentPosition(), 30_000);
  h.clock.now = 1_000_250 + 4_321;
  assert.equal(h.room.currentPosition(), 34_321);
  assert.equal(h.room.positionAt(1_000_250 + 10_000), 40_000);
  h.room.receive(entryOf(pb(2, 'pause', { playing: false, positionMs: 36_000, serverTimestamp: 1_006_000 })));
  h.clock.now = 2_000_000;
  assert.equal(h.room.currentPosition(), 36_000);
});

test('snapshot mid-song: position from the snapshot serverTimestamp, later events replace it', async () => {
  // Snapshot taken 12 s into the song: positionMs is the position at serverTimestamp.
  const snap: PlaybackState = { playing: true, trackId: 'song', positionMs: 12_000, serverTimestamp: 1_012_000, startAtServerTime: 1_000_000, syncBufferMs: 100 };
  const h = harness({ 'room:join': () => ({ ...state(7, snap), self: member(ME) }) });
  h.room.resume();
  await h.room.ready();
  assert.deepEqual(h.room.state!.playback, snap);
  h.clock.now = 1_015_500;
  assert.equal(h.room.currentPosition(), 15_500);
  h.room.receive(entryOf(pb(8, 'seek', { positionMs: 60_000, serverTimestamp: 1_016_000, syncBufferMs: 100 })));
  h.clock.now = 1_017_100;
  assert.equal(h.room.currentPosition(), 61_000);
  h.room.receive(entryOf(pb(9, 'stop', { playing: false, trackId: null, positionMs: 0 })));
  assert.equal(h.room.playback!.trackId, null);
  assert.equal(h.room.currentPosition(), 0);
});

test('playback:sync is not sequenced: applied only when it matches the current state', async () => {
  const h = harness({ 'room:join': () => ({ ...state(0), self: member(ME) }) });
  const early: PlaybackSync = { roomId: ROOM, trackId: 'track-1', positionMs: 10, serverTimestamp: 1_000_300 };
  h.room.receivePlaybackSync(early);
  assert.equal(h.syncs.length, 0, 'no state yet: dropped');
  h.room.resume();
  await h.room.ready();
  h.room.receivePlaybackSync(early);
  assert.equal(h.syncs.length, 0, 'idle room: dropped');
  h.room.receive(entryOf(pb(1, 'start', { serverTimestamp: 1_000_000, syncBufferMs: 200 })));
  h.room.receivePlaybackSync(early);
  h.room.receivePlaybackSync({ ...early, trackId: 'other' });
  h.room.receivePlaybackSync({ ...early, serverTimestamp: 1_000_100 }); // computed before the start took effect
  assert.deepEqual(h.syncs, [early]);
  assert.equal(h.room.seq, 1, 'a sync never moves the seq');
  assert.equal(h.room.playback!.positionMs, 0, 'nor the playback state');
  // Issued before a pause, arriving after it: dropped.
  h.room.receive(entryOf(pb(2, 'pause', { playing: false, positionMs: 500, serverTimestamp: 1_000_700 })));
  h.room.receivePlaybackSync({ ...early, serverTimestamp: 1_000_650, positionMs: 450 });
  assert.equal(h.syncs.length, 1);
  // While the room resynchronises its state may be stale: syncs wait.
  h.room.receive(entryOf(pb(3, 'start', { serverTimestamp: 1_001_000 })));
  h.room.onDisconnected();
  h.room.receivePlaybackSync({ ...early, serverTimestamp: 1_002_000 });
  assert.equal(h.syncs.length, 1);
});

test('control methods: payloads carry the roomId, acks land in room.playback before the broadcast', async () => {
  let seq = 0;
  const h = harness({
    'room:join': () => ({ ...state(0, idle, [member(ME, 'host', true), member('guest-0001')]), self: member(ME, 'host', true) }),
    'playback:start': (p) => pb(++seq, 'start', { positionMs: p.positionMs ?? 0, trackId: p.trackId }),
    'playback:pause': (p) => pb(++seq, 'pause', { playing: false, positionMs: p.positionMs ?? 777 }),
    'playback:seek': (p) => pb(++seq, 'seek', { positionMs: p.positionMs }),
    'playback:stop': () => pb(++seq, 'stop', { playing: false, trackId: null }),
    'playback:grant': (p) => ({ roomId: ROOM, seq: ++seq, clientId: p.clientId, canControl: p.allowed }),
  });
  h.room.resume();
  await h.room.ready();
  assert.equal(h.room.canControl, true, 'the host controls');
  const started = await h.room.play('song-9', 5000);
  assert.equal(started.seq, 1);
  assert.equal(h.room.playback!.trackId, 'song-9');
  assert.equal(h.room.seq, 1, 'the ack was applied through the reorder buffer');
  h.room.receive(entryOf(started)); // the broadcast copy: dropped
  await h.room.pause();
  await h.room.seek(42);
  await h.room.stop();
  const granted = await h.room.grantControl('guest-0001', true);
  assert.deepEqual(granted, { roomId: ROOM, seq: 5, clientId: 'guest-0001', canControl: true });
  assert.equal(h.room.participant('guest-0001')!.canControl, true);
  assert.deepEqual(h.playback.map((e) => e.action), ['start', 'pause', 'seek', 'stop'], 'each once');
  const sent = h.calls.filter((c) => c.event.startsWith('playback:')).map((c) => [c.event, c.payload]);
  assert.deepEqual(sent, [
    ['playback:start', { trackId: 'song-9', positionMs: 5000, roomId: ROOM }],
    ['playback:pause', { roomId: ROOM }],
    ['playback:seek', { positionMs: 42, roomId: ROOM }],
    ['playback:stop', { roomId: ROOM }],
    ['playback:grant', { clientId: 'guest-0001', allowed: true, roomId: ROOM }],
  ]);
});

test('an ack ahead of a missing broadcast waits for it: room.playback never skips a seq', async () => {
  const h = harness({
    'room:join': () => ({ ...state(0), self: member(ME, 'host', true) }),
    'playback:seek': () => pb(2, 'seek', { positionMs: 9000 }),
    'room:catchup': () => ({ roomId: ROOM, recovered: true, more: false, seq: 2, events: [{ ...entryOf(pb(1, 'start')), ts: 0 }] }),
  });
  h.room.resume();
  await h.room.ready();
  await h.room.seek(9000);
  assert.equal(h.room.seq, 0, 'seq 1 (another controller\'s start) is missing');
  await sleep(50);
  assert.deepEqual(h.playback.map((e) => e.seq), [1, 2], 'the hole was fetched, then the ack applied');
  assert.equal(h.room.playback!.positionMs, 9000);
});

test('control errors are ClientErrors with the server code; a closed room refuses with CLOSED', async () => {
  const h = harness({
    'room:join': () => ({ ...state(0), self: member(ME) }),
    'playback:start': () => Promise.reject(new ClientError('UNAUTHORIZED', 'no playback control')),
    'room:leave': () => ({ roomId: ROOM }),
  });
  h.room.resume();
  await h.room.ready();
  assert.equal(h.room.canControl, false);
  await assert.rejects(h.room.play('x'), (e: unknown) => e instanceof ClientError && e.code === 'UNAUTHORIZED');
  assert.equal(h.room.playback!.trackId, null);
  await h.room.leave();
  await assert.rejects(h.room.pause(), (e: unknown) => e instanceof ClientError && e.code === 'CLOSED');
});

test('host hand-over: participant:left with newHostClientId makes the longest-present member host', async () => {
  const h = harness({ 'room:join': () => ({ ...state(0, idle, [member('host-0000', 'host', true), member(ME)]), self: member(ME) }) });
  h.room.resume();
  await h.room.ready();
  assert.equal(h.room.canControl, false);
  h.room.receive({
    name: 'room:participant:left', seq: 1,
    payload: { roomId: ROOM, seq: 1, clientId: 'host-0000', userId: null, reason: 'left', userStillPresent: false, newHostClientId: ME } as never,
  });
  assert.equal(h.room.self!.role, 'host');
  assert.equal(h.room.canControl, true);
  assert.equal(h.room.info!.hostClientId, ME);
});

/**
 * The SDK's pure room-state reducer (src/client/room-state.ts): a snapshot advanced event by event,
 * inputs never mutated.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelFromState, reduceRoom, type RoomModel } from '../../packages/client/src/room-state.ts';
import type { Participant, PlaybackState, RoomStatePayload } from '@tether/protocol';
import type { SequencedEntry } from '../../packages/client/src/types.ts';

const ROOM = 'ABCDEFGH';
const idle: PlaybackState = { playing: false, trackId: null, positionMs: 0, serverTimestamp: 0, startAtServerTime: null, syncBufferMs: 0 };
const member = (clientId: string, role: Participant['role'] = 'member', o: Partial<Participant> = {}): Participant => ({
  clientId, userId: null, name: clientId, role, status: 'online', canControl: role === 'host', joinedAt: 0, ...o,
});
const snapshot = (seq: number, participants: Participant[]): RoomStatePayload => ({
  room: { id: ROOM, code: ROOM, name: 'r', kind: 'room', maxParticipants: 10, hasPassword: false, createdAt: 0, hostClientId: participants.find((p) => p.role === 'host')?.clientId ?? null },
  participants,
  playback: idle,
  seq,
  incarnation: 'inc-1',
  serverTimestamp: 5,
});

function frozenCopy(m: RoomModel): string {
  return JSON.stringify({ ...m, members: [...m.members.entries()] });
}

test('a snapshot becomes a model: members by clientId, seq and incarnation kept', () => {
  const m = modelFromState(snapshot(7, [member('a', 'host'), member('b')]));
  assert.equal(m.seq, 7);
  assert.equal(m.incarnation, 'inc-1');
  assert.deepEqual([...m.members.keys()], ['a', 'b']);
  assert.equal(m.info.hostClientId, 'a');
  const legacy = modelFromState({ ...snapshot(1, []), incarnation: undefined as unknown as string });
  assert.equal(legacy.incarnation, null, 'a server that sends no incarnation: unknown, not a string');
});

test('events advance the model in order; the input is never changed', () => {
  const m0 = modelFromState(snapshot(1, [member('a', 'host'), member('b')]));
  const before = frozenCopy(m0);
  const steps: SequencedEntry[] = [
    { name: 'room:participant:joined', seq: 2, payload: { roomId: ROOM, seq: 2, participant: member('c') } },
    { name: 'room:presence', seq: 3, payload: { roomId: ROOM, seq: 3, returned: [], away: ['b', 'zz'] } },
    { name: 'playback:control', seq: 4, payload: { roomId: ROOM, seq: 4, clientId: 'c', canControl: true } },
    {
      name: 'playback:start', seq: 5,
      payload: { roomId: ROOM, seq: 5, action: 'start', by: 'a', playing: true, trackId: 't', positionMs: 10, serverTimestamp: 100, startAtServerTime: 300, syncBufferMs: 200 },
    },
    { name: 'room:event', seq: 6, payload: { roomId: ROOM, seq: 6, type: 'x', data: 1, from: 'a', ts: 0 } },
    { name: 'room:presence', seq: 7, payload: { roomId: ROOM, seq: 7, returned: ['b'], away: [] } },
  ];
  let m = m0;
  const models = [m0];
  for (const e of steps) models.push((m = reduceRoom(m, e)));
  assert.equal(frozenCopy(m0), before, 'the snapshot model is untouched');
  assert.equal(m.seq, 7);
  assert.deepEqual([...m.members.keys()], ['a', 'b', 'c']);
  assert.equal(models[2]!.members.get('b')!.status, 'away', 'b away at seq 3');
  assert.equal(m.members.get('b')!.status, 'online', 'b back at seq 7');
  assert.equal(m.members.get('c')!.canControl, true);
  assert.deepEqual(m.playback, { playing: true, trackId: 't', positionMs: 10, serverTimestamp: 100, startAtServerTime: 300, syncBufferMs: 200 });
  assert.equal(models[3]!.playback.playing, false, 'the model before the start still idle');
  assert.equal(models[5]!.members, models[4]!.members, 'an app event shares the members map (no copy)');
});

test('the host leaves: the named member becomes host and may control; info follows', () => {
  const m0 = modelFromState(snapshot(3, [member('a', 'host'), member('b')]));
  const m1 = reduceRoom(m0, {
    name: 'room:participant:left', seq: 4,
    payload: { roomId: ROOM, seq: 4, clientId: 'a', userId: null, reason: 'left', userStillPresent: false, newHostClientId: 'b' },
  });
  assert.deepEqual([...m1.members.keys()], ['b']);
  assert.equal(m1.members.get('b')!.role, 'host');
  assert.equal(m1.members.get('b')!.canControl, true);
  assert.equal(m1.info.hostClientId, 'b');
  assert.equal(m0.info.hostClientId, 'a');
  assert.equal(m0.members.get('b')!.role, 'member');
  const m2 = reduceRoom(m1, {
    name: 'room:participant:left', seq: 5,
    payload: { roomId: ROOM, seq: 5, clientId: 'b', userId: null, reason: 'evicted', userStillPresent: false, newHostClientId: null },
  });
  assert.equal(m2.members.size, 0);
  assert.equal(m2.info.hostClientId, 'b', 'no new host named: info unchanged');
});

test('control for someone not in the room and presence with nothing to change keep the model as is', () => {
  const m0 = modelFromState(snapshot(1, [member('a', 'host')]));
  const m1 = reduceRoom(m0, { name: 'playback:control', seq: 2, payload: { roomId: ROOM, seq: 2, clientId: 'ghost', canControl: true } });
  assert.equal(m1.members, m0.members);
  const m2 = reduceRoom(m1, { name: 'room:presence', seq: 3, payload: { roomId: ROOM, seq: 3, returned: ['a'], away: [] } });
  assert.equal(m2.members, m0.members, 'already online: no copy');
  assert.equal(m2.seq, 3);
});

test('a presence batch with joined members adds them as they are at the flush; the input is never changed', () => {
  const m0 = modelFromState(snapshot(4, [member('a', 'host'), member('b')]));
  const before = frozenCopy(m0);
  const m1 = reduceRoom(m0, {
    name: 'room:presence', seq: 5,
    payload: { roomId: ROOM, seq: 5, returned: [], away: ['b'], joined: [member('c', 'member', { joinedAt: 3 }), member('d', 'member', { status: 'away' })] },
  });
  assert.equal(frozenCopy(m0), before, 'the model before the batch is untouched');
  assert.equal(m1.seq, 5);
  assert.deepEqual([...m1.members.keys()], ['a', 'b', 'c', 'd']);
  assert.deepEqual(m1.members.get('c'), member('c', 'member', { joinedAt: 3 }));
  assert.equal(m1.members.get('d')!.status, 'away', 'joined and already away within the window: announced with its status');
  assert.equal(m1.members.get('b')!.status, 'away');
  assert.equal(m0.members.has('c'), false);
});

test('a batched join of a member the snapshot already holds (the joiner itself) replaces it with the batch version', () => {
  // The joiner's own room:state lists it; the batch of its window announces it to everyone, itself included.
  const m0 = modelFromState(snapshot(9, [member('a', 'host'), member('me')]));
  const m1 = reduceRoom(m0, {
    name: 'room:presence', seq: 10,
    payload: { roomId: ROOM, seq: 10, returned: [], away: [], joined: [member('me', 'member', { canControl: true })] },
  });
  assert.equal(m1.members.size, 2);
  assert.equal(m1.members.get('me')!.canControl, true);
  assert.equal(m0.members.get('me')!.canControl, false);
});

test('a batch without joined (logged by an older server) or with an empty one changes only statuses', () => {
  const m0 = modelFromState(snapshot(1, [member('a', 'host'), member('b', 'member', { status: 'away' })]));
  const legacy = reduceRoom(m0, { name: 'room:presence', seq: 2, payload: { roomId: ROOM, seq: 2, returned: ['b'], away: [] } });
  assert.equal(legacy.members.get('b')!.status, 'online');
  const empty = reduceRoom(m0, { name: 'room:presence', seq: 2, payload: { roomId: ROOM, seq: 2, returned: ['a'], away: [], joined: [] } });
  assert.equal(empty.members, m0.members, 'nothing changed: the members map is shared');
});

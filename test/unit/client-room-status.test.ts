/**
 * Issue #16 (SDK part): a room announces every change of `room.status` with a 'status' event,
 * so a UI need not poll it. Scripted server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOM, scriptedRoom, state } from '../helpers/scripted-room.ts';
import { ClientError } from '../../packages/client/src/errors.ts';

test('status events follow the room: joining → live → offline → syncing → live → closed, each once', async () => {
  let answer: (() => void) | null = null;
  const h = scriptedRoom({
    'room:join': () => ({ ...state(1), self: null }),
    'room:rejoin': (p: { lastSeq?: number }, room) => {
      if (p.lastSeq === undefined) room.receiveSnapshot({ ...state(2, 'inc-B'), recovered: false });
      const res = { roomId: ROOM, recovered: p.lastSeq !== undefined, replayed: 0, more: false, seq: 2, incarnation: p.lastSeq === undefined ? 'inc-B' : 'inc-A' };
      return new Promise((resolve) => (answer = () => resolve(res)));
    },
  });
  const seen: string[] = [];
  h.room.on('status', (s) => void seen.push(s));
  assert.equal(h.room.status, 'joining');
  h.room.resume();
  await h.room.ready();
  assert.deepEqual(seen, ['live']);

  h.host.connected = false;
  h.room.onDisconnected();
  assert.deepEqual(seen, ['live', 'offline']);
  h.host.connected = true;
  h.host.connEpoch++;
  h.room.onConnected();
  assert.deepEqual(seen.at(-1), 'syncing', 'connected again: syncing before the rejoin is even sent');
  h.room.resume();
  await sleep(5);
  assert.equal(h.room.status, 'syncing');
  answer!();
  await sleep(5);
  assert.deepEqual(seen, ['live', 'offline', 'syncing', 'live']);

  // A head of another incarnation: a resync while connected.
  h.room.receiveHead({ roomId: ROOM, incarnation: 'inc-B', seq: 2 });
  assert.deepEqual(seen.at(-1), 'syncing');
  answer!();
  await sleep(5);
  assert.deepEqual(seen.at(-1), 'live');

  h.room.close('left');
  assert.deepEqual(seen, ['live', 'offline', 'syncing', 'live', 'syncing', 'live', 'closed']);
  h.room.onDisconnected();
  assert.equal(seen.length, 7, 'nothing after closed');
});

test('a first join refused: joining → closed', async () => {
  const h = scriptedRoom({ 'room:join': () => Promise.reject(new ClientError('ROOM_NOT_FOUND')) });
  const seen: string[] = [];
  h.room.on('status', (s) => void seen.push(s));
  h.room.resume();
  await assert.rejects(h.room.ready());
  assert.deepEqual(seen, ['closed']);
});

/**
 * BroadcastMarks (src/transport/marks.ts): the highest seq of the sequenced broadcasts that passed
 * the adapter's parser, per Socket.IO room this worker holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { BroadcastMarks } from '../../src/transport/marks.ts';

/** The adapter's message as the parser sees it: [uid, packet, opts]. */
const msg = (rooms: string[], event: string, payload: unknown) => ['uid', { type: 2, data: [event, payload], nsp: '/sync' }, { rooms, except: [], flags: {} }];

test('marks: sequenced broadcasts to held rooms, highest seq; everything else is ignored; a room left behind is forgotten', () => {
  const adapter = Object.assign(new EventEmitter(), { rooms: new Map<string, Set<string>>([['room:A', new Set(['s1'])], ['room:B', new Set(['s2'])]]) });
  const marks = new BroadcastMarks();
  marks.observe(msg(['room:A'], 'room:event', { roomId: 'A', seq: 3 }));
  assert.equal(marks.highest('room:A'), 0, 'nothing before the namespace adapter is watched');
  marks.watch(adapter);
  marks.observe(msg(['room:A'], 'room:event', { roomId: 'A', seq: 5 }));
  marks.observe(msg(['room:A'], 'room:participant:left', { roomId: 'A', seq: 4 })); // out of order: the highest stays
  marks.observe(msg(['room:A'], 'room:head', { roomId: 'A', seq: 99 })); // not sequenced (and never through the adapter)
  marks.observe(msg(['room:A'], 'room:signal', { roomId: 'A', seq: 98 }));
  marks.observe(msg(['room:C'], 'room:event', { roomId: 'C', seq: 7 })); // a room this worker does not hold
  marks.observe(msg(['room:B'], 'room:presence', { roomId: 'B', seq: 'x' }));
  marks.observe({ type: 3, requestId: 'r' }); // an adapter request
  marks.observe([]);
  marks.observe(null);
  assert.equal(marks.highest('room:A'), 5);
  assert.equal(marks.highest('room:B'), 0);
  assert.equal(marks.highest('room:C'), 0);
  adapter.rooms.delete('room:A');
  adapter.emit('delete-room', 'room:A');
  assert.equal(marks.highest('room:A'), 0, 'forgotten with its last local connection');
});

test('holds: one id per continuous hold of a room; letting go and taking it again is another hold', () => {
  const adapter = Object.assign(new EventEmitter(), { rooms: new Map<string, Set<string>>([['room:A', new Set(['s1'])]]) });
  const marks = new BroadcastMarks();
  assert.equal(marks.hold('room:A'), null, 'nothing before the adapter is watched');
  marks.watch(adapter);
  const a1 = marks.hold('room:A');
  assert.notEqual(a1, null, 'a room held when watching starts is a hold');
  assert.equal(marks.hold('room:B'), null);
  adapter.emit('create-room', 'room:B');
  const b1 = marks.hold('room:B');
  assert.notEqual(b1, null);
  assert.notEqual(b1, a1);
  assert.equal(marks.hold('room:A'), a1, 'unchanged while held');
  adapter.emit('delete-room', 'room:B');
  assert.equal(marks.hold('room:B'), null);
  adapter.emit('create-room', 'room:B');
  assert.notEqual(marks.hold('room:B'), b1, 'taken again: a new hold, so marks seen before it do not count');
});

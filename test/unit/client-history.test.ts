/**
 * Issue #16 (SDK): `room.history({ limit, before })` reads a page of earlier events from the log
 * through room:catchup, against a scripted server whose log keeps the seqs from `oldest` to `head`
 * (the retention of CATCHUP_MAX_EVENTS / CATCHUP_TTL_MS) and answers like catchup.lua: no partial
 * replay, `recovered: false` when fromSeq + 1 is no longer logged or the incarnation differs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOM, logEntry, scriptedRoom, state } from '../helpers/scripted-room.ts';
import { ClientError } from '../../packages/client/src/errors.ts';

/** catchup.lua's contract over a log holding oldest..head, pages capped at `cap`. */
function logServer(opts: { head: number; oldest: number; incarnation?: string; cap?: number }) {
  const inc = opts.incarnation ?? 'inc-A';
  return (p: { fromSeq: number; incarnation?: string; limit?: number }) => {
    if (p.incarnation !== undefined && p.incarnation !== inc) return { roomId: ROOM, events: [], seq: opts.head, incarnation: inc, recovered: false, more: false };
    if (p.fromSeq === opts.head) return { roomId: ROOM, events: [], seq: opts.head, incarnation: inc, recovered: true, more: false };
    if (p.fromSeq > opts.head || opts.oldest > p.fromSeq + 1) return { roomId: ROOM, events: [], seq: opts.head, incarnation: inc, recovered: false, more: false };
    const limit = Math.min(p.limit ?? 500, opts.cap ?? 500);
    const events = [];
    for (let s = p.fromSeq + 1; s <= opts.head && events.length < limit; s++) events.push(logEntry(s));
    return { roomId: ROOM, events, seq: opts.head, incarnation: inc, recovered: true, more: events.length === limit && p.fromSeq + limit < opts.head };
  };
}

async function joined(catchup: ReturnType<typeof logServer>, seq: number, settings = {}) {
  const h = scriptedRoom({ 'room:join': () => ({ ...state(seq), self: null }), 'room:catchup': catchup }, settings);
  const seen: number[] = [];
  h.room.on('event', (e) => void seen.push(e.seq));
  h.room.resume();
  await h.room.ready();
  return { ...h, seen, catchups: () => h.calls.filter((c) => c.event === 'room:catchup') };
}

test('a page of the events before room.seq, oldest first, from max(0, seq - limit); nothing applied or emitted', async () => {
  const h = await joined(logServer({ head: 40, oldest: 1 }), 40);
  const page = await h.room.history({ limit: 10 });
  assert.deepEqual(page.events.map((e) => e.seq), [31, 32, 33, 34, 35, 36, 37, 38, 39, 40]);
  assert.equal(page.recovered, true);
  assert.equal(page.fromSeq, 30);
  assert.deepEqual(h.catchups().map((c) => c.payload), [{ roomId: ROOM, fromSeq: 30, incarnation: 'inc-A', limit: 10 }]);
  assert.equal(h.room.seq, 40, 'the room stream is untouched');
  assert.deepEqual(h.seen, []);

  const short = await h.room.history({ limit: 100 });
  assert.deepEqual(short.events.map((e) => e.seq), Array.from({ length: 40 }, (_, i) => i + 1), 'from max(0, seq - limit)');
  assert.equal(short.fromSeq, 0);
  assert.equal(short.recovered, true);
});

test('`before` pages further back; a page larger than a catch-up page is read in several', async () => {
  const h = await joined(logServer({ head: 100, oldest: 1, cap: 7 }), 100, { catchupLimit: 50 });
  const page = await h.room.history({ limit: 20, before: 60 });
  assert.deepEqual(page.events.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i + 41));
  assert.equal(page.recovered, true);
  assert.deepEqual(h.catchups().map((c) => c.payload.fromSeq), [40, 47, 54], 'pages of 7 (the server cap) until seq 60');
  const none = await h.room.history({ limit: 5, before: 0 });
  assert.deepEqual(none, { events: [], recovered: true, fromSeq: 0, upTo: 0 });
  assert.equal(h.catchups().length, 3, 'nothing before seq 0: no request');
});

test('a log trimmed by retention: recovered false, with the newest part it still holds, found in few requests', async () => {
  const h = await joined(logServer({ head: 200, oldest: 171 }), 200);
  const page = await h.room.history({ limit: 100 });
  assert.equal(page.recovered, false);
  assert.deepEqual(page.events.map((e) => e.seq), Array.from({ length: 30 }, (_, i) => i + 171), 'seqs 171..200, everything still logged');
  assert.ok(h.catchups().length <= 1 + Math.ceil(Math.log2(100)), `${h.catchups().length} requests`);
});

test('nothing of the range logged any more: recovered false and no events', async () => {
  const h = await joined(logServer({ head: 50, oldest: 51 }), 50);
  const page = await h.room.history({ limit: 20 });
  assert.deepEqual({ events: page.events, recovered: page.recovered }, { events: [], recovered: false });
});

test('a room recreated under another incarnation: recovered false, none of the other life', async () => {
  const h = await joined(logServer({ head: 50, oldest: 1, incarnation: 'inc-B' }), 50);
  const page = await h.room.history({ limit: 20 });
  assert.deepEqual({ events: page.events, recovered: page.recovered }, { events: [], recovered: false });
  assert.equal(h.catchups().length, 1, 'no bisection over another life of the room');
});

test('bad options and a closed room are refused; server errors reach the caller', async () => {
  const h = await joined(logServer({ head: 5, oldest: 1 }), 5);
  await assert.rejects(h.room.history({ limit: 0 }), (e: ClientError) => e.code === 'INVALID_PAYLOAD');
  await assert.rejects(h.room.history({ limit: 1.5 }), (e: ClientError) => e.code === 'INVALID_PAYLOAD');
  await assert.rejects(h.room.history({ before: -1 }), (e: ClientError) => e.code === 'INVALID_PAYLOAD');

  const limited = scriptedRoom({
    'room:join': () => ({ ...state(5), self: null }),
    'room:catchup': () => {
      throw new ClientError('RATE_LIMITED');
    },
  });
  limited.room.resume();
  await limited.room.ready();
  await assert.rejects(limited.room.history(), (e: ClientError) => e.code === 'RATE_LIMITED');

  h.room.close('left');
  await assert.rejects(h.room.history(), (e: ClientError) => e.code === 'CLOSED');
});

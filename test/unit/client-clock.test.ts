/**
 * TetherClient against an in-process fake /sync server (socket.io, no Redis): clock sync after a
 * join (burst, report, periodic re-sync, stop on leave/close), serverNow() with a skewed server
 * clock, and `?clientId=` on the handshake (nginx affinity), including after an identity reset.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Server, type Socket } from 'socket.io';
import { TetherClient } from '../../packages/client/src/index.ts';
import { memoryStorage } from '../../packages/client/src/storage.ts';
import type { RoomStatePayload } from '@tether/protocol';

/** Polls until `check` holds (at most 5 s): the timing of a loaded machine is not asserted. */
async function waitFor(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check() && Date.now() < deadline) await sleep(10);
}

const SKEW = 5_000; // the fake server's clock runs 5 s ahead of the test's
const httpServer = createServer();
const io = new Server(httpServer);
const nsp = io.of('/sync');
let url = '';
const log: { event: string; payload: any; clientId: string; at: number }[] = [];
const handshakes: { query: string | undefined; auth: string | undefined }[] = [];
const refuseOnce = new Set<string>();

function state(roomId: string): RoomStatePayload {
  return {
    room: { id: roomId, code: roomId, name: 'r', kind: 'room', maxParticipants: 10, hasPassword: false, createdAt: 0, hostClientId: null },
    participants: [],
    playback: { playing: false, trackId: null, positionMs: 0, serverTimestamp: Date.now() + SKEW, startAtServerTime: null, syncBufferMs: 100 },
    seq: 0,
    serverTimestamp: Date.now() + SKEW,
  };
}

before(async () => {
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth as { clientId?: string };
    handshakes.push({ query: socket.handshake.query['clientId'] as string | undefined, auth: auth.clientId });
    if (auth.clientId && refuseOnce.delete(auth.clientId)) {
      next(Object.assign(new Error('session token mismatch'), { data: { code: 'SESSION_INVALID', message: 'session token mismatch' } }));
      return;
    }
    next();
  });
  nsp.on('connection', (socket: Socket) => {
    const clientId = (socket.handshake.auth as { clientId: string }).clientId;
    const on = (event: string, answer: (p: any) => unknown) =>
      socket.on(event, (payload: unknown, ack: (r: unknown) => void) => {
        log.push({ event, payload, clientId, at: Date.now() });
        ack({ ok: true, data: answer(payload) });
      });
    on('room:join', (p) => ({ ...state(p.roomCode), self: null }));
    on('room:leave', (p) => ({ roomId: p.roomId }));
    on('room:rejoin', (p) => ({ roomId: p.roomId, recovered: true, replayed: 0, more: false, seq: p.lastSeq ?? 0 }));
    on('sync:report', (p) => ({ rttMs: Math.round(p.rttMs) }));
    socket.on('sync:ping', (p: { clientTimestamp: number }, ack: (r: unknown) => void) => {
      log.push({ event: 'sync:ping', payload: p, clientId, at: Date.now() });
      const t1 = Date.now() + SKEW;
      setTimeout(() => ack({ ok: true, data: { clientTimestamp: p.clientTimestamp, serverReceiveTimestamp: t1, serverTimestamp: Date.now() + SKEW } }), 2);
    });
    socket.emit('session', { clientId, userId: null, epoch: 1, nodeId: 'fake', serverTime: Date.now() + SKEW, programRooms: [] });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});

/** Every client a test opens, closed after the file even when an assertion failed (a reconnecting client keeps the process alive). */
const opened = new Set<TetherClient>();
function track(c: TetherClient): TetherClient {
  opened.add(c);
  return c;
}

after(async () => {
  for (const c of opened) c.close();
  await io.close();
});

const count = (clientId: string, event: string) => log.filter((e) => e.clientId === clientId && e.event === event).length;

test('clock sync: burst after the join, report to the room, re-sync every interval, stop on leave and close', async () => {
  const c = track(new TetherClient({ url, clockSync: { samples: 5, intervalMs: 150 } }));
  const clocks: number[] = [];
  c.on('clock', (e) => void clocks.push(e.offsetMs));
  assert.equal(c.clockSynced, false);
  assert.ok(Math.abs(c.serverNow() - Date.now()) < 5, 'before any sample: the local clock');
  await c.connect();
  const id = c.clientId!;
  await sleep(100);
  assert.equal(count(id, 'sync:ping'), 0, 'no clock sync without a room');
  const room = await c.join('ROOMAAAA');
  await sleep(100);
  assert.equal(count(id, 'sync:ping'), 5, 'a burst of 5 pings');
  const reports = log.filter((e) => e.clientId === id && e.event === 'sync:report');
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.payload.roomId, 'ROOMAAAA');
  assert.ok(reports[0]!.payload.rttMs >= 0 && reports[0]!.payload.rttMs < 100, `rtt ${reports[0]!.payload.rttMs}`);
  assert.ok(Math.abs(reports[0]!.payload.offsetMs - SKEW) < 50, `offset ${reports[0]!.payload.offsetMs}`);
  assert.equal(c.clockSynced, true);
  assert.ok(Math.abs(c.clockOffset - SKEW) < 50);
  assert.ok(c.rttMs !== null && c.rttMs < 100);
  assert.ok(Math.abs(c.serverNow() - (Date.now() + SKEW)) < 50, 'serverNow() follows the server clock');
  assert.ok(Math.abs(c.localTimeOf(c.serverNow()) - Date.now()) < 5);
  assert.equal(clocks.length, 1);

  await sleep(400);
  const pings = count(id, 'sync:ping');
  assert.ok(pings >= 6 && pings <= 9, `periodic re-sync: one ping per 150 ms (${pings})`);
  assert.ok(count(id, 'sync:report') >= 2);

  await room.leave();
  const afterLeave = count(id, 'sync:ping');
  await sleep(400);
  assert.equal(count(id, 'sync:ping'), afterLeave, 'no re-sync without a room');

  await c.join('ROOMBBBB');
  await sleep(100);
  assert.equal(count(id, 'sync:ping'), afterLeave, 'same connection: no new burst');
  assert.equal(log.filter((e) => e.clientId === id && e.event === 'sync:report').at(-1)!.payload.roomId, 'ROOMBBBB', 'the new room gets a report at once');
  await sleep(400);
  assert.ok(count(id, 'sync:ping') > afterLeave, 're-sync restarted with the room');

  c.close();
  const afterClose = count(id, 'sync:ping');
  await sleep(400);
  assert.equal(count(id, 'sync:ping'), afterClose, 'nothing after close()');
  // The clock-sync scheduler's timers (src/client/clock.ts), reached through the client's private field.
  const timers = (c as unknown as { clock: { timer?: unknown; pause?: unknown } }).clock;
  assert.equal(timers.timer, undefined);
  assert.equal(timers.pause, undefined);
});

test('a reconnect runs a new burst on the new connection', async () => {
  const c = track(new TetherClient({ url, clockSync: { samples: 3, intervalMs: 60_000 }, reconnect: { baseMs: 10, maxMs: 20 } }));
  await c.join('ROOMCCCC');
  const id = c.clientId!;
  // Wait for the bursts instead of sleeping a fixed time (a loaded CI machine ran late), then
  // check that no more than the burst was sent.
  await waitFor(() => count(id, 'sync:ping') >= 3);
  await sleep(100);
  assert.equal(count(id, 'sync:ping'), 3);
  c.socket.io.engine.close(); // network-level cut
  await waitFor(() => count(id, 'sync:ping') >= 6 && c.room('ROOMCCCC')?.status === 'live');
  await sleep(100);
  assert.equal(c.status.state, 'connected');
  assert.equal(c.room('ROOMCCCC')!.status, 'live');
  assert.equal(count(id, 'sync:ping'), 6);
  assert.equal(count(id, 'sync:report'), 2);
  c.close();
});

test('clockSync: false sends no pings; serverNow() is the local clock', async () => {
  const c = track(new TetherClient({ url, clockSync: false }));
  await c.join('ROOMDDDD');
  await sleep(100);
  assert.equal(count(c.clientId!, 'sync:ping'), 0);
  assert.ok(Math.abs(c.serverNow() - Date.now()) < 5);
  c.close();
});

test('nginx affinity: ?clientId= on the first handshake, from storage or generated, and after an identity reset', async () => {
  const storage = memoryStorage({ 'tether:clientId': 'stored-client-1', 'tether:sessionToken': 'tok' });
  const first = track(new TetherClient({ url, storage, socketOptions: { query: { app: 'x' } } }));
  const n = handshakes.length;
  await first.connect();
  assert.deepEqual(handshakes.slice(n), [{ query: 'stored-client-1', auth: 'stored-client-1' }]);
  assert.equal((first.socket.io.opts.query as Record<string, string>)['app'], 'x', 'the app\'s own query is kept');
  first.close();

  const fresh = track(new TetherClient({ url }));
  const m = handshakes.length;
  await fresh.connect();
  assert.equal(handshakes[m]!.query, fresh.clientId, 'generated before the first connect');
  fresh.close();

  refuseOnce.add('stale-client-1');
  const resetStorage = memoryStorage({ 'tether:clientId': 'stale-client-1', 'tether:sessionToken': 'tok' });
  const reset = track(new TetherClient({ url, storage: resetStorage }));
  const k = handshakes.length;
  await reset.connect();
  const seen = handshakes.slice(k);
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[0], { query: 'stale-client-1', auth: 'stale-client-1' });
  assert.notEqual(reset.clientId, 'stale-client-1');
  assert.deepEqual(seen[1], { query: reset.clientId, auth: reset.clientId }, 'the query follows the new identity');
  reset.close();
});

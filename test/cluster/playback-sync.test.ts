import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../src/redis/keys.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PlaybackEvent, PlaybackSync } from '@tether/protocol';
import { closeAll, connect, createRoomHttp, ok, record, request, signJwt, until, type TestSocket } from '../helpers/clients.ts';
import { redisClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorkers, type Worker } from '../helpers/workers.ts';

/**
 * Synchronized playback across 3 real workers sharing one Redis: permissions, one start instant
 * for everyone, mid-song joins, and the cluster-wide drift sync surviving a SIGKILLed worker.
 */

const INTERVAL = 500;
let redis: TestRedis;
let workers: Worker[];

before(async () => {
  redis = await startRedis();
  // debug: the sync job logs which node ran each tick, so the test can kill one that just did.
  workers = await startWorkers(3, { redisUrl: redis.url, prefix: redis.prefix, env: { PLAYBACK_SYNC_INTERVAL_MS: String(INTERVAL), LOG_LEVEL: 'debug' } });
});

after(async () => {
  closeAll();
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  await redis.stop();
});

async function host(url: string, sub: string, code: string): Promise<TestSocket> {
  const { socket } = await connect(url, { auth: { token: await signJwt({ sub, name: sub }) } });
  const joined = await ok(socket, 'room:join', { roomCode: code });
  assert.equal(joined.self.role, 'host');
  return socket;
}

async function member(url: string, code: string): Promise<{ socket: TestSocket; clientId: string }> {
  const { socket, session } = await connect(url);
  await ok(socket, 'room:join', { roomCode: code, guestName: `g-${session.clientId.slice(0, 4)}` });
  return { socket, clientId: session.clientId };
}

async function errorCode(socket: TestSocket, event: Parameters<typeof request>[1], payload: unknown): Promise<string> {
  const res = await request(socket, event, payload as never);
  assert.equal(res.ok, false, `${event} should have been refused`);
  return (res as { ok: false; error: { code: string } }).error.code;
}

test('clock sync: a ping is answered once (by ack, or by sync:pong without one); reports are stored for members only, clamped', async () => {
  const room = await createRoomHttp(workers[0]!.url, {}, 'clock-host');
  const h = await host(workers[0]!.url, 'clock-host', room.code);
  const events = record(h);
  const t0 = Date.now();
  const pong = await ok(h, 'sync:ping', { clientTimestamp: t0 });
  const t3 = Date.now();
  assert.equal(pong.clientTimestamp, t0);
  // Same machine, same clock: the server stamps lie inside the client's send/receive window.
  assert.ok(pong.serverReceiveTimestamp >= t0 && pong.serverTimestamp >= pong.serverReceiveTimestamp && pong.serverTimestamp <= t3);
  // Without an ack callback the same stamps come as sync:pong; with one, only on the ack.
  (h.emit as (ev: string, p: unknown) => void)('sync:ping', { clientTimestamp: t0 + 1 });
  await until(() => events.some((e) => e.name === 'sync:pong'), 2000, 'sync:pong');
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(events.filter((e) => e.name === 'sync:pong').map((e) => e.payload.clientTimestamp), [t0 + 1], 'one sync:pong, for the ack-less ping only');

  assert.deepEqual(await ok(h, 'sync:report', { rttMs: 42.4, offsetMs: 3 }), { rttMs: 42 });
  assert.deepEqual(await ok(h, 'sync:report', { rttMs: 59_000, offsetMs: 0 }), { rttMs: 10_000 });
  assert.equal(await errorCode(h, 'sync:report', { rttMs: -1, offsetMs: 0 }), 'INVALID_PAYLOAD');
  assert.equal(await errorCode(h, 'sync:report', { roomId: 'someone-elses', rttMs: 10, offsetMs: 0 }), 'NOT_IN_ROOM');
  const { socket: loner } = await connect(workers[1]!.url);
  assert.equal(await errorCode(loner, 'sync:report', { rttMs: 10, offsetMs: 0 }), 'NOT_IN_ROOM');
});

test('program rooms: members report RTT, nobody controls playback over the socket', async () => {
  const { socket } = await connect(workers[1]!.url, { auth: { token: await signJwt({ sub: 'viewer', rooms: ['prog-pb'] }) } });
  assert.deepEqual(await ok(socket, 'sync:report', { roomId: 'prog-pb', rttMs: 70, offsetMs: 0 }), { rttMs: 70 });
  assert.equal(await errorCode(socket, 'playback:start', { roomId: 'prog-pb', trackId: 'x' }), 'UNAUTHORIZED');
  assert.equal(await errorCode(socket, 'playback:grant', { roomId: 'prog-pb', clientId: 'abcdefgh', allowed: true }), 'UNAUTHORIZED');
});

test('host controls playback, grants control; one start instant on every worker; late joiner lands mid-song', async () => {
  const room = await createRoomHttp(workers[0]!.url, {}, 'dj');
  const dj = await host(workers[0]!.url, 'dj', room.code);
  const guest = await member(workers[1]!.url, room.code);
  const djEvents = record(dj);
  const guestEvents = record(guest.socket);

  assert.equal(await errorCode(guest.socket, 'playback:start', { trackId: 'song-1' }), 'UNAUTHORIZED');
  assert.equal(await errorCode(guest.socket, 'playback:grant', { clientId: guest.clientId, allowed: true }), 'UNAUTHORIZED');
  assert.equal(await errorCode(dj, 'playback:seek', { positionMs: 5 }), 'INVALID_PAYLOAD', 'nothing loaded yet');

  // The slowest member decides the buffer: 2 × 120 ms.
  await ok(dj, 'sync:report', { rttMs: 30, offsetMs: 0 });
  await ok(guest.socket, 'sync:report', { rttMs: 120, offsetMs: 0 });

  const start = await ok(dj, 'playback:start', { trackId: 'song-1', positionMs: 1000 });
  assert.equal(start.action, 'start');
  assert.equal(start.syncBufferMs, 240);
  assert.equal(start.startAtServerTime! - start.serverTimestamp, 240);
  assert.equal(start.playing, true);
  assert.equal(start.positionMs, 1000);
  await until(() => guestEvents.some((e) => e.name === 'playback:start') && djEvents.some((e) => e.name === 'playback:start'), 3000, 'playback:start everywhere');
  const seen = [djEvents, guestEvents].map((evs) => evs.find((e) => e.name === 'playback:start')!.payload as PlaybackEvent);
  for (const ev of seen) assert.deepEqual(ev, start, 'identical broadcast on both workers (same seq, same startAtServerTime)');

  assert.equal(await errorCode(guest.socket, 'playback:seek', { positionMs: 20_000 }), 'UNAUTHORIZED');
  const grant = await ok(dj, 'playback:grant', { clientId: guest.clientId, allowed: true });
  assert.deepEqual({ clientId: grant.clientId, canControl: grant.canControl }, { clientId: guest.clientId, canControl: true });
  assert.ok(grant.seq > start.seq);
  await until(() => guestEvents.some((e) => e.name === 'playback:control'), 3000, 'playback:control');
  assert.equal(await errorCode(dj, 'playback:grant', { clientId: 'not-a-member-123', allowed: true }), 'NOT_IN_ROOM');

  const seek = await ok(guest.socket, 'playback:seek', { positionMs: 20_000 });
  assert.equal(seek.by, guest.clientId);
  assert.equal(seek.playing, true);
  assert.equal(seek.trackId, 'song-1');
  await until(() => djEvents.some((e) => e.name === 'playback:seek' && e.payload.seq === seek.seq), 3000, 'seek at host');

  await sleep(400);
  const { socket: late } = await connect(workers[2]!.url);
  const lateEvents = record(late);
  await ok(late, 'room:join', { roomCode: room.code, guestName: 'late' });
  await until(() => lateEvents.some((e) => e.name === 'room:state'), 3000, 'room:state');
  const state = lateEvents.find((e) => e.name === 'room:state')!.payload;
  const pb = state.playback;
  assert.equal(pb.playing, true);
  assert.equal(pb.trackId, 'song-1');
  assert.equal(pb.startAtServerTime, seek.startAtServerTime);
  const elapsed = pb.serverTimestamp - seek.startAtServerTime!;
  assert.ok(elapsed > 0, 'joined after the seek took effect');
  assert.ok(Math.abs(pb.positionMs - (20_000 + elapsed)) <= 5, `position ${pb.positionMs} vs ${20_000 + elapsed}`);
  assert.equal(state.participants.find((p: { clientId: string }) => p.clientId === guest.clientId).canControl, true);

  // A member's RTT counts only while it is a member: the late joiner's slow link stops mattering
  // when it leaves, and its entry is pruned by the next command.
  await ok(late, 'sync:report', { rttMs: 400, offsetMs: 0 });
  await ok(late, 'room:leave', {});
  const lateId = state.participants.find((p: { name: string }) => p.name === 'late').clientId as string;

  // Revoked: the guest is refused again.
  await ok(dj, 'playback:grant', { clientId: guest.clientId, allowed: false });
  assert.equal(await errorCode(guest.socket, 'playback:pause', {}), 'UNAUTHORIZED');
  const pause = await ok(dj, 'playback:pause', {});
  assert.equal(pause.playing, false);
  assert.equal(pause.syncBufferMs, 240, 'the departed member\'s 400 ms RTT is ignored');
  const r = await redisClient(redis.url);
  const rttKeys = await r.hKeys(new Keys(redis.prefix).room(room.id).rtt);
  await r.quit();
  assert.equal(rttKeys.includes(lateId), false, 'pruned');
  assert.equal(rttKeys.length, 2);
  // Frozen where the track is when the pause takes effect.
  assert.equal(pause.positionMs, 20_000 + (pause.startAtServerTime! - seek.startAtServerTime!));
  const stop = await ok(dj, 'playback:stop', {});
  assert.deepEqual([stop.playing, stop.trackId, stop.positionMs], [false, null, 0]);
  const snap = await ok(dj, 'room:rejoin', { roomId: room.id });
  assert.ok(snap.seq >= stop.seq);
});

test('drift sync: one playback:sync per interval for the cluster, through a SIGKILLed worker, and none after pause', async (t) => {
  const room = await createRoomHttp(workers[2]!.url, {}, 'sync-host');
  // The host (who starts playback) sits on the worker that will be killed; the observer elsewhere.
  const dj = await host(workers[2]!.url, 'sync-host', room.code);
  const observer = await member(workers[0]!.url, room.code);
  const cohost = await member(workers[1]!.url, room.code);
  await ok(dj, 'playback:grant', { clientId: cohost.clientId, allowed: true });

  const syncs: PlaybackSync[] = [];
  observer.socket.on('playback:sync', (s) => syncs.push(s));
  const start = await ok(dj, 'playback:start', { trackId: 'long-song', positionMs: 0 });
  await until(() => syncs.length >= 1, INTERVAL * 4, 'first playback:sync');
  const windowStart = syncs[0]!.serverTimestamp;

  // Kill worker 2 right after it ran a tick (so it is the one that scheduled the next), or at
  // the latest halfway through the window.
  const victim = workers[2]!;
  const ticksBy = (w: Worker) => w.output.filter((l) => l.includes('"msg":"playback sync"') && l.includes(room.id)).length;
  const before = ticksBy(victim);
  await sleep(INTERVAL * 2);
  const killBy = Date.now() + INTERVAL * 4;
  while (Date.now() < killBy && ticksBy(victim) === before) await sleep(10);
  const ranTick = ticksBy(victim) > before;
  await victim.kill('SIGKILL');

  await sleep(INTERVAL * 6);
  const windowSyncs = syncs.filter((s) => s.serverTimestamp >= windowStart);
  const span = windowSyncs.at(-1)!.serverTimestamp - windowStart;
  const expected = span / INTERVAL + 1;
  const ranBy = workers.map((w) => ticksBy(w));
  const detail = `${windowSyncs.length} syncs over ${span} ms (expected ≈${expected.toFixed(1)}), ticks per worker ${ranBy}, victim ran a tick just before dying: ${ranTick}`;
  t.diagnostic(detail);
  assert.ok(span >= INTERVAL * 7, detail);
  assert.ok(windowSyncs.length >= expected * 0.5 && windowSyncs.length <= expected * 1.5, detail);
  for (let i = 1; i < windowSyncs.length; i++) {
    const gap = windowSyncs[i]!.serverTimestamp - windowSyncs[i - 1]!.serverTimestamp;
    assert.ok(gap >= INTERVAL * 0.5, `two syncs ${gap} ms apart: ${detail}`);
  }
  for (const s of windowSyncs) {
    assert.equal(s.trackId, 'long-song');
    assert.equal(s.roomId, room.id);
    assert.equal(s.positionMs, s.serverTimestamp - start.startAtServerTime!, 'position advances with server time');
  }

  // The co-host pauses (the host's worker is dead): the generation moves on, the chain goes stale.
  const pause = await ok(cohost.socket, 'playback:pause', {});
  await sleep(INTERVAL * 4);
  const late = syncs.filter((s) => s.serverTimestamp > pause.serverTimestamp);
  assert.deepEqual(late, [], 'no playback:sync after pause');
});

/**
 * SDK playback (issue #6, client half) against two real workers and a real Redis: clock sync and
 * RTT reports run by the SDK, one start instant in server time for clients on different workers,
 * a late joiner's position from its snapshot, drift syncs, and host-only control until granted.
 * Run `npm run build` first when dist/ is stale.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { TetherClient, ClientError, driftMs, positionAt } from '../../packages/client/src/index.ts';
import type { PlaybackEvent, PlaybackSync, Room, TetherClientOptions } from '../../packages/client/src/index.ts';
import { Keys } from '../../src/redis/keys.ts';
import { redisClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorkers, type Worker } from '../helpers/workers.ts';
import { createRoomHttp, signJwt, until } from '../helpers/clients.ts';

const SYNC_INTERVAL = 500;
/** Same machine, loopback: clocks agree and RTTs are a few ms. Generous for a loaded CI box. */
const TOLERANCE_MS = 150;

let redis: TestRedis;
let workers: Worker[] = [];
const clients = new Set<TetherClient>();

before(async () => {
  redis = await startRedis();
  workers = await startWorkers(2, { redisUrl: redis.url, prefix: redis.prefix, env: { PLAYBACK_SYNC_INTERVAL_MS: String(SYNC_INTERVAL) } });
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await redis?.stop();
});

function client(url: string, opts: Partial<TetherClientOptions> = {}): TetherClient {
  const c = new TetherClient({ url, requestTimeoutMs: 4000, connectTimeoutMs: 4000, clockSync: { samples: 6, intervalMs: 1000 }, ...opts });
  c.on('error', () => undefined);
  clients.add(c);
  return c;
}

function recordPlayback(room: Room): { events: PlaybackEvent[]; syncs: PlaybackSync[] } {
  const rec = { events: [] as PlaybackEvent[], syncs: [] as PlaybackSync[] };
  room.on('playback', (e) => void rec.events.push(e));
  room.on('playback:sync', (s) => void rec.syncs.push(s));
  return rec;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ClientError, `a ClientError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a rejection');
}

test('SDK playback across two workers: one start instant, late joiner mid-song, drift syncs, control until granted', { timeout: 60_000 }, async () => {
  const sub = `dj-${randomUUID().slice(0, 8)}`;
  const { id: roomId } = await createRoomHttp(workers[0]!.url, {}, sub);

  const dj = client(workers[0]!.url, { getToken: () => signJwt({ sub, name: 'DJ' }) });
  const hostRoom = await dj.join(roomId);
  assert.equal(hostRoom.self?.role, 'host', 'the HTTP creator is host');
  assert.equal(hostRoom.canControl, true);
  const guest = client(workers[1]!.url);
  const guestRoom = await guest.join(roomId, { guestName: 'Guest' });
  assert.notEqual(dj.session!.nodeId, guest.session!.nodeId, 'clients on different workers');
  assert.equal(guestRoom.canControl, false);
  const hostRec = recordPlayback(hostRoom);
  const guestRec = recordPlayback(guestRoom);

  // Clock sync ran by itself after the join and reported an RTT for each member.
  await until(() => dj.clockSynced && guest.clockSynced, 5000, 'clock sync');
  for (const c of [dj, guest]) {
    assert.ok(Math.abs(c.clockOffset) < 50, `same host: offset ${c.clockOffset} ms`);
    assert.ok(c.rttMs !== null && c.rttMs < 100, `loopback rtt ${c.rttMs} ms`);
  }
  const r = await redisClient(redis.url);
  try {
    const rttKey = new Keys(redis.prefix).room(roomId).rtt;
    await until(async () => Object.keys(await r.hGetAll(rttKey)).length === 2, 5000, 'both RTT reports stored');
    assert.deepEqual(Object.keys(await r.hGetAll(rttKey)).sort(), [dj.clientId!, guest.clientId!].sort());
  } finally {
    await r.quit();
  }

  // Control is the host's until granted.
  assert.equal(await code(guestRoom.play('not-yours')), 'UNAUTHORIZED');
  assert.equal(await code(guestRoom.seek(1000)), 'UNAUTHORIZED');

  // The host plays: both clients hold the same start instant in server time.
  const started = await hostRoom.play('track-A', 1000);
  assert.equal(started.action, 'start');
  assert.equal(hostRoom.playback?.startAtServerTime, started.startAtServerTime, 'the ack is applied when play() resolves');
  await until(() => guestRoom.seq >= started.seq, 5000, 'guest got the start');
  for (const room of [hostRoom, guestRoom]) {
    assert.deepEqual(room.playback, {
      playing: true, trackId: 'track-A', positionMs: 1000,
      serverTimestamp: started.serverTimestamp, startAtServerTime: started.startAtServerTime, syncBufferMs: started.syncBufferMs,
    });
  }
  assert.ok(started.syncBufferMs >= 100 && started.syncBufferMs <= 500);
  // In local time each client starts at localTimeOf(startAt): the same instant up to clock-sync error.
  assert.ok(Math.abs(dj.localTimeOf(started.startAtServerTime!) - guest.localTimeOf(started.startAtServerTime!)) < 50);
  assert.deepEqual(hostRec.events.map((e) => e.seq), [started.seq], 'the host saw its start once (ack + broadcast)');
  assert.deepEqual(guestRec.events.map((e) => e.seq), [started.seq]);

  // Drift syncs from the cluster reach both clients and agree with the computed position.
  await until(() => hostRec.syncs.length > 0 && guestRec.syncs.length > 0, 5000, 'playback:sync');
  for (const [c, room, rec] of [[dj, hostRoom, hostRec], [guest, guestRoom, guestRec]] as const) {
    const s = rec.syncs.at(-1)!;
    assert.equal(s.trackId, 'track-A');
    assert.ok(Math.abs(driftMs(room.currentPosition(), s, c.serverNow())) < TOLERANCE_MS, 'position agrees with the sync');
  }

  // A late joiner lands mid-song: its snapshot and its currentPosition() match the start event.
  const late = client(workers[1]!.url);
  const lateRoom = await late.join(roomId, { guestName: 'Late' });
  const snap = lateRoom.state!.playback;
  assert.equal(snap.playing, true);
  assert.equal(snap.trackId, 'track-A');
  assert.equal(snap.startAtServerTime, started.startAtServerTime);
  // Snapshot rule: positionMs is the position at its serverTimestamp.
  const expectedAtSnap = positionAt(started, snap.serverTimestamp);
  assert.ok(Math.abs(snap.positionMs - expectedAtSnap) <= 1, `snapshot position ${snap.positionMs} vs ${expectedAtSnap}`);
  assert.ok(snap.positionMs > 1000, 'mid-song, not from the top');
  await until(() => late.clockSynced, 5000, 'late joiner clock sync');
  const now = late.serverNow();
  const expected = snap.positionMs + (now - snap.serverTimestamp);
  assert.ok(Math.abs(lateRoom.currentPosition() - expected) < TOLERANCE_MS, `late joiner at ${lateRoom.currentPosition()} vs ${expected}`);
  assert.ok(Math.abs(lateRoom.currentPosition() - hostRoom.currentPosition()) < TOLERANCE_MS, 'late joiner and host agree');

  // Granted, the guest controls; every client applies the same sequenced pause.
  const grant = await hostRoom.grantControl(guest.clientId!, true);
  assert.equal(grant.canControl, true);
  await until(() => guestRoom.canControl, 5000, 'guest sees its grant');
  const paused = await guestRoom.pause();
  assert.equal(paused.by, guest.clientId);
  for (const room of [hostRoom, guestRoom, lateRoom]) {
    await until(() => room.seq >= paused.seq, 5000, 'pause everywhere');
    assert.equal(room.playback!.playing, false);
    assert.equal(room.currentPosition(), paused.positionMs, 'paused: frozen at the pause position');
  }
  const seeked = await guestRoom.seek(90_000);
  assert.equal(seeked.positionMs, 90_000);
  await hostRoom.grantControl(guest.clientId!, false);
  await until(() => !guestRoom.canControl, 5000, 'guest sees the revoke');
  assert.equal(await code(guestRoom.play('again')), 'UNAUTHORIZED');
  const stopped = await hostRoom.stop();
  await until(() => lateRoom.seq >= stopped.seq, 5000, 'stop everywhere');
  assert.equal(lateRoom.playback!.trackId, null);
  assert.deepEqual(guestRec.events.map((e) => e.action), ['start', 'pause', 'seek', 'stop']);
});

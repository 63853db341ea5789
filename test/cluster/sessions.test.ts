/**
 * Issue #3: sessions that survive reconnects — against real workers, Redis and clients, with the
 * network cut under clients by a TCP proxy (not clean disconnects).
 * Windows come from FAST_WINDOWS: grace 1500 ms, flush 300 ms, takeover 300 ms, ping 1 s + 1 s.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../src/redis/keys.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { redisClient, testQueue, type TestRedis } from '../helpers/redis.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { startProxy } from '../helpers/proxy.ts';
import { connect, connectRefused, createRoomHttp, ok, record, request, signJwt, until, type TestSocket } from '../helpers/clients.ts';

let cluster: TestCluster | undefined;
let redis: TestRedis;
let a: Worker;
let b: Worker;

before(async () => {
  cluster = await startCluster(2);
  redis = cluster.redis;
  [a, b] = cluster.workers as [Worker, Worker];
});
after(() => cluster?.stop());

const membershipEvents = (events: { name: string }[]) => events.filter((e) => e.name === 'room:participant:left' || e.name === 'room:participant:joined');

async function member(roomId: string, clientId: string, prefix = redis.prefix): Promise<{ status: string; epoch: number } | null> {
  const r = await redisClient(redis.url);
  try {
    const raw = await r.hGet(new Keys(prefix).room(roomId).members, clientId);
    return raw ? (JSON.parse(raw) as { status: string; epoch: number }) : null;
  } finally {
    await r.quit();
  }
}

async function roomWithObserver(url = a.url) {
  const room = await createRoomHttp(url);
  const observer = await connect(url);
  const seen = record(observer.socket);
  await ok(observer.socket, 'room:join', { roomCode: room.code, guestName: 'observer' });
  return { room, observer, seen };
}

describe('sessions', () => {
  test('a network blip shorter than the grace period: no left/joined for others, snapshot on rejoin', async () => {
    const { room, seen } = await roomWithObserver();
    const proxy = await startProxy(b.port);
    try {
      const first = await connect(proxy.url);
      await ok(first.socket, 'room:join', { roomCode: room.code, guestName: 'blippy' });
      proxy.cut(); // connection reset under the client
      await until(async () => (await member(room.code, first.session.clientId))?.status === 'away', 3000, 'member away');
      const again = await connect(a.url, { auth: { clientId: first.session.clientId, sessionToken: first.session.sessionToken } });
      assert.equal(again.session.sessionToken, undefined, 'the token is only handed out once');
      assert.equal(again.session.epoch, first.session.epoch + 1);
      const mine = record(again.socket);
      const res = await ok(again.socket, 'room:rejoin', { roomId: room.code });
      assert.equal(res.recovered, false);
      const snap = mine.find((e) => e.name === 'room:state_snapshot');
      assert.ok(snap, 'snapshot sent at once');
      assert.ok(snap.payload.participants.some((p: { clientId: string; status: string }) => p.clientId === first.session.clientId && p.status === 'online'));
      await ok(again.socket, 'room:rejoin', { roomId: room.code }); // idempotent
      await sleep(2500); // past grace + flush
      assert.deepEqual(membershipEvents(seen).slice(1), [], 'observer saw no left/joined');
      assert.equal((await member(room.code, first.session.clientId))?.status, 'online');
    } finally {
      await proxy.close();
    }
  });

  test('a frozen network (no FIN, only ping timeouts notice) longer than the grace period: exactly one left', async () => {
    const { room, seen } = await roomWithObserver();
    const proxy = await startProxy(b.port);
    try {
      const c = await connect(proxy.url);
      await ok(c.socket, 'room:join', { roomCode: room.code, guestName: 'gone' });
      proxy.freeze();
      // ping interval + timeout (2 s) to notice, grace 1.5 s, then the eviction job.
      await until(() => seen.some((e) => e.name === 'room:participant:left'), 10_000, 'eviction');
      await sleep(1000);
      const left = seen.filter((e) => e.name === 'room:participant:left');
      assert.equal(left.length, 1);
      assert.equal(left[0]!.payload.clientId, c.session.clientId);
      assert.equal(left[0]!.payload.reason, 'evicted');
      const presence = seen.filter((e) => e.name === 'room:presence');
      assert.ok(presence.some((e) => e.payload.away.includes(c.session.clientId)), 'away was announced in a batch first');
      assert.equal(await member(room.code, c.session.clientId), null);
      // Coming back after eviction: the seat is gone.
      const back = await connect(a.url, { auth: { clientId: c.session.clientId, sessionToken: c.session.sessionToken } });
      const res = await request(back.socket, 'room:rejoin', { roomId: room.code });
      assert.equal(!res.ok && res.error.code, 'NOT_IN_ROOM');
    } finally {
      await proxy.close();
    }
  });

  test('takeover across workers: the new socket wins, the old one is told and closed, nobody sees a duplicate', async () => {
    const { room, seen } = await roomWithObserver();
    const old = await connect(a.url);
    await ok(old.socket, 'room:join', { roomCode: room.code, guestName: 'twice' });
    const oldEvents = record(old.socket);
    const closed = new Promise<string>((resolve) => old.socket.once('disconnect', (reason) => resolve(reason)));

    const fresh = await connect(b.url, { auth: { clientId: old.session.clientId, sessionToken: old.session.sessionToken } });
    await until(() => oldEvents.some((e) => e.name === 'session:replaced'), 3000, 'session:replaced');
    const refused = await request(old.socket, 'room:publish', { type: 'x', data: 1, clientMsgId: 'z' });
    assert.equal(!refused.ok && refused.error.code, 'SESSION_REPLACED');
    await ok(fresh.socket, 'room:rejoin', { roomId: room.code });
    assert.equal(await closed, 'io server disconnect');
    await sleep(2500);
    assert.deepEqual(membershipEvents(seen).slice(1), []);
    const snap = await ok(fresh.socket, 'room:catchup', { roomId: room.code, fromSeq: 0 });
    assert.ok(snap.recovered);
    const r = await redisClient(redis.url);
    assert.equal(await r.hLen(new Keys(redis.prefix).room(room.code).members), 2, 'observer + one seat, no duplicate');
    await r.quit();
  });

  test('knowing a clientId is not enough: hijacks fail', async () => {
    const victim = await connect(a.url, { auth: { token: await signJwt({ sub: 'victim' }) } });
    assert.equal((await connectRefused(b.url, { clientId: victim.session.clientId })).code, 'SESSION_INVALID');
    assert.equal((await connectRefused(b.url, { clientId: victim.session.clientId, sessionToken: 'A'.repeat(43) })).code, 'SESSION_INVALID');
    // The right token with another user's JWT is refused too.
    assert.equal(
      (await connectRefused(b.url, { clientId: victim.session.clientId, sessionToken: victim.session.sessionToken, token: await signJwt({ sub: 'mallory' }) })).code,
      'UNAUTHORIZED',
    );
    assert.ok(victim.socket.connected, 'the victim keeps its socket');
  });

  test('the eviction survives a SIGKILL of the worker that scheduled it', async () => {
    const doomed = await startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'doomed' });
    const { room, seen } = await roomWithObserver();
    const proxy = await startProxy(doomed.port);
    try {
      const c = await connect(proxy.url);
      await ok(c.socket, 'room:join', { roomCode: room.code, guestName: 'orphan' });
      proxy.cut();
      await until(async () => (await member(room.code, c.session.clientId))?.status === 'away', 3000, 'member away');
      await doomed.kill('SIGKILL');
      // Grace 1.5 s + at most BullMQ's drainDelay (1 s) for another worker to notice the job.
      await until(() => seen.some((e) => e.name === 'room:participant:left'), 15_000, 'eviction by another worker');
      assert.equal(seen.filter((e) => e.name === 'room:participant:left').length, 1);
    } finally {
      await proxy.close();
    }
  });

  test('clients of a SIGKILLed worker that never come back are reaped: away, then evicted', async () => {
    const doomed = await startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'ghost-town' });
    const { room, seen } = await roomWithObserver();
    const ghost = await connect(doomed.url);
    await ok(ghost.socket, 'room:join', { roomCode: room.code, guestName: 'ghost' });
    await doomed.kill('SIGKILL'); // no disconnect handler runs anywhere
    // Heartbeat expiry (6 s) + reaper period (4 s) + grace (1.5 s), with margin.
    await until(() => seen.some((e) => e.name === 'room:participant:left'), 20_000, 'ghost evicted');
    const presence = seen.filter((e) => e.name === 'room:presence');
    assert.ok(presence.some((e) => e.payload.away.includes(ghost.session.clientId)), 'marked away before the eviction');
    assert.equal(seen.filter((e) => e.name === 'room:participant:left').length, 1);
    assert.equal(await member(room.code, ghost.session.clientId), null);
  });

  test('a stale eviction job (older epoch) is a no-op', async () => {
    const { room, seen } = await roomWithObserver();
    const c = await connect(a.url);
    await ok(c.socket, 'room:join', { roomCode: room.code, guestName: 'stays' });
    c.socket.io.engine.close(); // transport closes: away, eviction scheduled under epoch 1
    await until(async () => (await member(room.code, c.session.clientId))?.status === 'away', 3000, 'away');
    const back = await connect(b.url, { auth: { clientId: c.session.clientId, sessionToken: c.session.sessionToken, roomId: room.code } });
    const mine = record(back.socket);
    await until(() => mine.some((e) => e.name === 'room:rejoined'), 3000, 'automatic rejoin from the handshake');
    // An eviction for the old epoch that nobody cancelled (e.g. cancel failed) runs now.
    const queue = testQueue(redis, 'evict', room.code);
    try {
      const job = await queue.add('evict', { v: 1, clientId: c.session.clientId, roomId: room.code, epoch: c.session.epoch }, { jobId: `evict-stale-${Date.now()}` });
      await until(async () => ['completed', 'unknown'].includes(await job.getState()), 5000, 'stale job processed');
    } finally {
      await queue.close();
    }
    await sleep(2500); // and the real grace period passes too
    assert.equal((await member(room.code, c.session.clientId))?.status, 'online');
    assert.deepEqual(membershipEvents(seen).slice(1), []);
  });

  test('a user with two devices stays present until the last one leaves', async () => {
    const { room, seen } = await roomWithObserver();
    const token = await signJwt({ sub: 'dana', name: 'Dana' });
    const phone = await connect(a.url, { auth: { token } });
    const laptop = await connect(b.url, { auth: { token } });
    await ok(phone.socket, 'room:join', { roomCode: room.code });
    await ok(laptop.socket, 'room:join', { roomCode: room.code });
    await ok(phone.socket, 'room:leave', {});
    await until(() => seen.some((e) => e.name === 'room:participant:left'), 3000, 'first left');
    assert.equal(seen.find((e) => e.name === 'room:participant:left')!.payload.userStillPresent, true);
    laptop.socket.disconnect(); // a deliberate client disconnect leaves at once
    await until(() => seen.filter((e) => e.name === 'room:participant:left').length === 2, 3000, 'second left');
    assert.equal(seen.filter((e) => e.name === 'room:participant:left')[1]!.payload.userStillPresent, false);
  });

  test('reconnect storm: N rejoins in R rooms cost about R presence broadcasts, not N × room size', async () => {
    const ROOMS = 8;
    const PER_ROOM = 24; // half on each worker
    // Its own prefix and a production-like grace: a restart must not outlast the grace period.
    const prefix = `${redis.prefix}s`;
    const env = { GRACE_PERIOD_MS: '20000', RECONNECT_FLUSH_MS: '2000' };
    const a = await startWorker({ redisUrl: redis.url, prefix, nodeId: 'calm', env });
    const c = await startWorker({ redisUrl: redis.url, prefix, nodeId: 'storm', env });
    const proxy = await startProxy(c.port); // the stormed half reaches its worker through a cuttable network
    const rooms = await Promise.all(Array.from({ length: ROOMS }, () => createRoomHttp(a.url)));
    const clients: { socket: TestSocket; roomId: string; events: ReturnType<typeof record>; onStorm: boolean }[] = [];
    for (const room of rooms) {
      for (let i = 0; i < PER_ROOM; i++) {
        const onStorm = i % 2 === 1;
        const conn = await connect(onStorm ? proxy.url : a.url, { reconnection: true });
        conn.socket.auth = { clientId: conn.session.clientId, sessionToken: conn.session.sessionToken, roomId: room.code };
        const events = record(conn.socket);
        await ok(conn.socket, 'room:join', { roomCode: room.code, guestName: `m${i}` });
        clients.push({ socket: conn.socket, roomId: room.code, events, onStorm });
      }
    }
    await sleep(500);
    for (const cl of clients) cl.events.length = 0;

    // The worker holding half of every room dies and comes back on the same port.
    await c.kill('SIGKILL');
    const restarted = await startWorker({ redisUrl: redis.url, prefix, nodeId: 'storm-2', port: c.port, env });
    try {
      const stormed = clients.filter((cl) => cl.onStorm);
      await until(() => stormed.every((cl) => cl.events.some((e) => e.name === 'room:rejoined')), 30_000, 'every stormed client back').catch((err) => {
        const missing = stormed.filter((cl) => !cl.events.some((e) => e.name === 'room:rejoined'));
        console.log('not back:', missing.length, missing.slice(0, 3).map((m) => JSON.stringify(m.events.slice(-3))), restarted.output.slice(-5));
        throw err;
      });
      await sleep(3000); // let the last flush windows close
      const observers = clients.filter((cl) => !cl.onStorm);
      const joinedOrLeft = observers.reduce((n, cl) => n + membershipEvents(cl.events).length, 0);
      assert.equal(joinedOrLeft, 0, 'no per-client joined/left broadcasts');
      const presenceSeqs = new Set(observers.flatMap((cl) => cl.events.filter((e) => e.name === 'room:presence').map((e) => `${e.payload.roomId}:${e.payload.seq}`)));
      const naive = stormed.length * PER_ROOM; // a joined message per rejoin to every room member
      const received = observers.reduce((n, cl) => n + cl.events.filter((e) => e.name === 'room:presence').length, 0);
      console.log(`storm: ${stormed.length} rejoins in ${ROOMS} rooms → ${presenceSeqs.size} presence broadcasts, ${received} messages to observers (naive: ~${naive})`);
      assert.ok(presenceSeqs.size <= ROOMS * 3, `presence broadcasts ${presenceSeqs.size} ≤ 3 per room`);
      for (const cl of stormed) assert.equal((await member(cl.roomId, (cl.socket.auth as { clientId: string }).clientId, prefix))?.status, 'online');

      // Second wave: every stormed client's transport drops at once (the server sees each
      // disconnect, so all are marked away and come back): still a few batches per room.
      for (const cl of clients) cl.events.length = 0;
      proxy.cut();
      await until(() => stormed.every((cl) => cl.events.some((e) => e.name === 'room:rejoined')), 30_000, 'second wave back');
      await sleep(3000);
      const wave2 = new Set(observers.flatMap((cl) => cl.events.filter((e) => e.name === 'room:presence').map((e) => `${e.payload.roomId}:${e.payload.seq}`)));
      const announced = new Set(observers.flatMap((cl) => cl.events.filter((e) => e.name === 'room:presence').flatMap((e) => [...e.payload.away, ...e.payload.returned])));
      console.log(`storm wave 2: ${stormed.length} drops+rejoins in ${ROOMS} rooms → ${wave2.size} presence broadcasts (naive: ${2 * stormed.length} broadcasts)`);
      assert.equal(observers.reduce((n, cl) => n + membershipEvents(cl.events).length, 0), 0);
      assert.ok(wave2.size <= ROOMS * 3, `presence broadcasts ${wave2.size} ≤ 3 per room`);
      assert.ok(announced.size <= stormed.length);
    } finally {
      for (const cl of clients) cl.socket.close();
      await proxy.close();
      await restarted.kill('SIGKILL');
      await a.kill('SIGKILL');
    }
  });
});

/**
 * Issue #11 points 3, 4, 6, 7 and the Redis-pause edge of point 2, against real workers and a real
 * redis-server that the tests pause (SIGSTOP), slow down (a latency proxy) and restart:
 * - a worker respawned under its old NODE_ID leaves no ghosts (liveness per process instance);
 * - a clean stop under a slow Redis records every disconnect before it removes anything;
 * - Redis paused past the heartbeat TTL costs no connected client its seat (fencing);
 * - a position of another incarnation of a room is never continued;
 * - a lost broadcast reaches the app through room heads within two intervals.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../src/redis/keys.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalRedis } from '../../src/cluster/local-redis.ts';
import { io } from 'socket.io-client';
import { redisClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { closeAll, connect, createRoomHttp, ok, publishHttp, record, request, signJwt, trackSocket, until, type TestSocket } from '../helpers/clients.ts';
import { checkInvariants } from '../helpers/invariants.ts';
import type { Ack, RejoinResult, SessionPayload } from '@tether/protocol';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
after(async () => {
  closeAll();
  for (const c of cleanups.reverse()) await c();
});

// These faults sit between a worker and one redis-server process (a TCP proxy in front of its one
// port, SIGSTOP of its pid, a restart, keys arranged with KEYS on that server), so the file runs on
// a standalone Redis whatever TEST_REDIS_TOPOLOGY says. Faults of a Cluster or a Sentinel set
// (slot migration, a master's failover) have their own files: resharding, sentinel-failover.
async function redisFor(): Promise<TestRedis> {
  const r = await startRedis({ topology: 'standalone' });
  cleanups.push(() => r.stop());
  return r;
}
async function worker(opts: Parameters<typeof startWorker>[0]): Promise<Worker> {
  const w = await startWorker(opts);
  cleanups.push(() => w.kill('SIGKILL'));
  return w;
}
async function members(redis: TestRedis, roomId: string): Promise<Record<string, { status: string; epoch: number }>> {
  const r = await redisClient(redis.url);
  try {
    const all = await r.hGetAll(new Keys(redis.prefix).room(roomId).members);
    return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, JSON.parse(v) as { status: string; epoch: number }]));
  } finally {
    await r.quit();
  }
}

/** A socket.io-client that reconnects by itself and rejoins its room from the seq it holds, like the SDK. */
function rejoiningClient(url: string, roomId: string) {
  const c = { sessions: 0, clientId: '', token: '', lastSeq: 0, rejoins: [] as string[], socket: undefined as unknown as TestSocket };
  c.socket = trackSocket(
    io(`${url}/sync`, {
      transports: ['websocket'],
      forceNew: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      auth: (cb) => cb(c.clientId ? { clientId: c.clientId, sessionToken: c.token } : {}),
    }) as TestSocket,
  );
  c.socket.on('session', (s: SessionPayload) => {
    c.sessions++;
    c.clientId = s.clientId;
    c.token ||= s.sessionToken ?? '';
    if (c.sessions > 1) c.socket.emit('room:rejoin', { roomId, lastSeq: c.lastSeq }, (r: Ack<RejoinResult>) => c.rejoins.push(r.ok ? 'ok' : r.error.code));
  });
  return c;
}

describe('edges', () => {
  test('a worker cut off from Redis past the heartbeat TTL: its connected clients keep their seats (it fences, they rejoin)', { timeout: 120_000 }, async () => {
    const redis = await redisFor();
    const link = await startProxy(redis.port!);
    cleanups.push(() => link.close());
    const env = { GRACE_PERIOD_MS: '6000', WS_PING_INTERVAL: '5000', WS_PING_TIMEOUT: '20000' };
    const [w0, w1] = await Promise.all([
      worker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'pa', env }),
      worker({ redisUrl: `redis://127.0.0.1:${link.port}`, prefix: redis.prefix, nodeId: 'pb', env }),
    ]);
    const room = await createRoomHttp(w0.url, { maxParticipants: 100 });
    const clients = Array.from({ length: 30 }, (_, i) => rejoiningClient((i % 2 ? w0 : w1).url, room.code));
    await until(() => clients.every((c) => c.sessions === 1), 10_000, 'connected');
    for (const c of clients) {
      const res = (await c.socket.timeout(5000).emitWithAck('room:join', { roomCode: room.code, guestName: 'p' })) as Ack<{ seq: number }>;
      assert.ok(res.ok);
      c.lastSeq = res.data.seq;
    }
    // Longer than the 6 s heartbeat TTL: the other worker's reaper declares pb dead and marks its
    // clients away, while their sockets stay up on pb.
    link.down();
    await sleep(9000);
    link.up();
    // Past the grace period: a seat marked away by the reaper while its socket stayed up would be gone.
    await sleep(9000);
    const m = await members(redis, room.code);
    assert.equal(Object.keys(m).length, 30, 'nobody lost a seat');
    assert.deepEqual(Object.values(m).filter((x) => x.status !== 'online').length, 0, 'everybody online');
    assert.deepEqual(clients.flatMap((c) => c.rejoins.filter((r) => r !== 'ok')), [], 'every rejoin kept its seat');
    const report = await checkInvariants({ url: redis.url, prefix: redis.prefix, rooms: [room.code], clientIds: clients.map((c) => c.clientId), liveNodes: ['pa', 'pb'] });
    assert.deepEqual(report.violations, []);
    for (const w of [w0, w1]) assert.equal(w.process.exitCode, null);
  });

  test('SIGKILL and an immediate restart under the same NODE_ID: the dead process\'s clients are away within ~10 s, then evicted', { timeout: 120_000 }, async () => {
    const redis = await redisFor();
    const env = { GRACE_PERIOD_MS: '3000' };
    const w0 = await worker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'stay', env });
    let victim = await worker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'respawn', env });
    const room = await createRoomHttp(w0.url, { maxParticipants: 100 });
    const observer = await connect(w0.url);
    await ok(observer.socket, 'room:join', { roomCode: room.code, guestName: 'observer' });
    const seen = record(observer.socket);
    const ghosts = await Promise.all(Array.from({ length: 20 }, () => connect(victim.url)));
    for (const g of ghosts) await ok(g.socket, 'room:join', { roomCode: room.code, guestName: 'ghost' });
    const port = victim.port;
    await victim.kill('SIGKILL');
    victim = await worker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'respawn', port, env });
    const killedAt = Date.now();
    await until(async () => Object.values(await members(redis, room.code)).filter((m) => m.status === 'away').length === 20, 15_000, 'ghosts away');
    process.stdout.write(`# respawn: the dead process's 20 clients away after ${Date.now() - killedAt} ms\n`);
    await until(async () => Object.keys(await members(redis, room.code)).length === 1, 10_000, 'ghosts evicted');
    void seen;
    // The room's log (what every member gets, live or by catch-up): exactly one eviction per ghost.
    const r = await redisClient(redis.url);
    const log = (await r.zRange(new Keys(redis.prefix).room(room.code).log, 0, -1)).map((e) => JSON.parse(e) as { name: string; payload: { clientId: string; reason: string } });
    await r.quit();
    const left = log.filter((e) => e.name === 'room:participant:left');
    assert.deepEqual(left.map((e) => e.payload.clientId).sort(), ghosts.map((g) => g.session.clientId).sort());
    assert.ok(left.every((e) => e.payload.reason === 'evicted'));
    const report = await checkInvariants({ url: redis.url, prefix: redis.prefix, rooms: [room.code], clientIds: ghosts.map((g) => g.session.clientId) });
    assert.deepEqual(report.violations, []);
    // The respawned process serves, under its old name.
    const fresh = await connect(victim.url);
    assert.equal(fresh.session.nodeId, 'respawn');
  });

  test('a clean stop under a slow Redis records every disconnect before it removes anything', { timeout: 120_000 }, async () => {
    const redis = await redisFor();
    const slow: Proxy = await startProxy(redis.port!, { delayMs: 60 });
    cleanups.push(() => slow.close());
    // 5 s pings: 300 clients joining over a slowed Redis on a loaded machine must not time out.
    const env = { GRACE_PERIOD_MS: '4000', DRAIN_BATCH_SIZE: '300', DRAIN_INTERVAL_MS: '0', SHUTDOWN_TIMEOUT_MS: '30000', WS_PING_INTERVAL: '5000', WS_PING_TIMEOUT: '5000' };
    const w0 = await worker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'keep', env });
    const draining = await worker({ redisUrl: `redis://127.0.0.1:${slow.port}`, prefix: redis.prefix, nodeId: 'leaving', env });
    const room = await createRoomHttp(w0.url, { maxParticipants: 1000 });
    const clients: TestSocket[] = [];
    for (let i = 0; i < 300; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => connect(draining.url)));
      await Promise.all(batch.map((c) => ok(c.socket, 'room:join', { roomCode: room.code, guestName: 'drained' })));
      clients.push(...batch.map((c) => c.socket));
    }
    // SIGTERM; the clients never come back (no reconnection).
    const code = await draining.kill('SIGTERM');
    assert.equal(code, 0, `clean exit:\n${draining.output.slice(-10).join('\n')}`);
    const m = await members(redis, room.code);
    assert.equal(Object.values(m).filter((x) => x.status === 'online').length, 0, 'no member left online by the stop');
    await until(async () => Object.keys(await members(redis, room.code)).length === 0, 20_000, 'all evicted after the grace period');
  });

  test('a drain is not held up by an API client publishing steadily over keep-alive connections', { timeout: 90_000 }, async () => {
    const redis = await redisFor();
    const w = await worker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'busy-api', env: { SHUTDOWN_TIMEOUT_MS: '20000' } });
    const room = await createRoomHttp(w.url, {});
    const member = await connect(w.url);
    await ok(member.socket, 'room:join', { roomCode: room.code, guestName: 'member' });
    // fetch pools keep-alive connections: four loops back to back keep theirs busy, a request in
    // flight on each at almost any moment.
    let stop = false;
    const answers: Record<string, number> = {};
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        let status = 'refused';
        try {
          const res = await publishHttp(w.url, room.code, { type: 'tick', data: 1 });
          await res.arrayBuffer();
          status = String(res.status);
        } catch {
          await sleep(5); // the worker is gone: no hot loop until the others see it
        }
        answers[status] = (answers[status] ?? 0) + 1;
      }
    });
    await sleep(500);
    const t0 = Date.now();
    const code = await w.kill('SIGTERM');
    const ms = Date.now() - t0;
    stop = true;
    await Promise.all(loops);
    process.stdout.write(`# drained under steady API traffic: exit ${code} after ${ms} ms; answers ${JSON.stringify(answers)}\n`);
    // SHUTDOWN_TIMEOUT_MS ends a stop that never finished with exit 1.
    assert.equal(code, 0, `a clean exit:\n${w.output.slice(-10).join('\n')}`);
    assert.ok((answers['201'] ?? 0) > 0, 'the API was in use');
  });

  test('a position of another incarnation is never continued (recovered: false and a snapshot)', async () => {
    const redis = await redisFor();
    const w = await worker({ redisUrl: redis.url, prefix: redis.prefix });
    const token = await signJwt({ sub: 'viewer', rooms: ['news'] });
    const first = await connect(w.url, { auth: { token } });
    for (let i = 0; i < 3; i++) assert.equal((await publishHttp(w.url, 'news', { type: 'n', data: i })).status, 201);
    const rejoin1 = await ok(first.socket, 'room:rejoin', { roomId: 'news', lastSeq: 0 });
    assert.equal(rejoin1.recovered, true);
    assert.equal(rejoin1.seq, 3);
    const oldInc = rejoin1.incarnation;
    first.socket.close();
    // The room expires (its keys go) and comes back to life with the next connect that names it.
    const r = await redisClient(redis.url);
    for (const k of await r.keys(`${new Keys(redis.prefix).roomState('news')[0].replace(/:meta$/, '')}:*`)) await r.del(k);
    await r.quit();
    const second = await connect(w.url, { auth: { token } });
    for (let i = 0; i < 5; i++) await publishHttp(w.url, 'news', { type: 'n', data: i });
    const events = record(second.socket);
    const rejoin2 = await ok(second.socket, 'room:rejoin', { roomId: 'news', lastSeq: 3, incarnation: oldInc });
    assert.equal(rejoin2.recovered, false, 'seq 3 of the old life is not seq 3 of the new one');
    assert.notEqual(rejoin2.incarnation, oldInc);
    assert.equal(rejoin2.seq, 5);
    assert.ok(events.some((e) => e.name === 'room:state_snapshot' && e.payload.incarnation === rejoin2.incarnation));
    const catchup = await ok(second.socket, 'room:catchup', { roomId: 'news', fromSeq: 3, incarnation: oldInc });
    assert.equal(catchup.recovered, false);
    assert.equal(catchup.incarnation, rejoin2.incarnation);
    const same = await ok(second.socket, 'room:catchup', { roomId: 'news', fromSeq: 3, incarnation: rejoin2.incarnation });
    assert.deepEqual(same.events.map((e) => e.seq), [4, 5]);
    // The handshake carries positions the same way.
    const third = await connect(w.url, { auth: { token, lastSeq: { news: 3 }, incarnations: { news: oldInc } } });
    const thirdEvents = record(third.socket);
    await until(() => thirdEvents.some((e) => e.name === 'room:rejoined'), 3000, 'handshake rejoin');
    assert.equal(thirdEvents.find((e) => e.name === 'room:rejoined')!.payload.recovered, false);
  });

  test('a lost broadcast reaches a client connected all along within two head intervals, across a Redis pause', { timeout: 60_000 }, async () => {
    const redis = await redisFor();
    const env = { ROOM_HEAD_INTERVAL_MS: '1000', TEST_DROP_BROADCAST_TYPE: 'lost' };
    const [a, b] = await Promise.all([worker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'ha', env }), worker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'hb', env })]);
    const room = await createRoomHttp(a.url);
    const pub = await connect(a.url);
    const sub = await connect(b.url);
    await ok(pub.socket, 'room:join', { roomCode: room.code, guestName: 'pub' });
    const joined = await ok(sub.socket, 'room:join', { roomCode: room.code, guestName: 'sub' });
    const events = record(sub.socket);
    await sleep(2500); // the join's heads have come and gone: the room is quiet
    const heads = () => events.filter((e) => e.name === 'room:head');
    const quiet = heads().length;
    // Appended and acked, but its broadcast is lost (as if the publishing worker died right after).
    const lost = await ok(pub.socket, 'room:publish', { type: 'lost', data: 'x', clientMsgId: 'l1' });
    assert.ok(!events.some((e) => e.name === 'room:event'), 'the broadcast was lost');
    redis.process!.kill('SIGSTOP');
    await sleep(1500);
    redis.process!.kill('SIGCONT');
    const since = Date.now();
    await until(() => heads().slice(quiet).some((e) => e.payload.seq >= lost.seq), 2500, 'a head naming the lost seq within two intervals of Redis coming back');
    process.stdout.write(`# head after Redis came back: ${Date.now() - since} ms\n`);
    const head = heads().at(-1)!.payload;
    assert.equal(head.incarnation, joined.incarnation);
    // What the SDK does with it: fill from the log.
    const fill = await ok(sub.socket, 'room:catchup', { roomId: room.code, fromSeq: joined.seq, incarnation: head.incarnation });
    assert.ok(fill.events.some((e) => e.name === 'room:event' && e.payload.seq === lost.seq));
  });

  test('a Redis restart loses broadcasts quietly: no unhandled rejections, counted, workers stay up', { timeout: 90_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tether-restart-'));
    let redis = await startLocalRedis({ dir, persist: true });
    const port = redis.port;
    cleanups.push(async () => {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const prefix = 'restart';
    const env = { ROOM_HEAD_INTERVAL_MS: '1000', PUBLISH_RATE_PER_SEC: '1000', PUBLISH_BURST: '1000', ROOM_PUBLISH_RATE_PER_SEC: '10000', ROOM_PUBLISH_BURST: '10000' };
    const [a, b] = await Promise.all([worker({ redisUrl: redis.url, prefix, nodeId: 'ra', env }), worker({ redisUrl: redis.url, prefix, nodeId: 'rb', env })]);
    const room = await createRoomHttp(a.url);
    const pubs = await Promise.all([a, b, a, b].map((w) => connect(w.url)));
    for (const p of pubs) await ok(p.socket, 'room:join', { roomCode: room.code, guestName: 'pub' });
    // Publishes keep flowing from both workers while Redis dies and comes back.
    let running = true;
    let n = 0;
    const loops = pubs.map(async (p) => {
      while (running) {
        await request(p.socket, 'room:publish', { type: 'flow', data: n, clientMsgId: `f${n++}` }, 3000).catch(() => undefined);
      }
    });
    await sleep(1000);
    redis.process.kill('SIGKILL');
    await sleep(1500);
    redis = await startLocalRedis({ dir, persist: true, port });
    await sleep(4000);
    running = false;
    await Promise.all(loops);
    for (const w of [a, b]) {
      assert.deepEqual(w.output.filter((l) => /unhandled rejection/i.test(l)), [], `${w.nodeId}: no unhandled rejections`);
      assert.equal(w.process.exitCode, null);
    }
    const scrape = await (await fetch(`${a.url}/metrics`)).text();
    process.stdout.write(`# restart: ${n} publishes attempted; ${/tether_adapter_publish_errors_total (\d+)/.exec(scrape)?.[1] ?? 0} adapter publishes lost on worker a\n`);
    // After the restart the room works again across workers.
    const after1 = await connect(b.url);
    await ok(after1.socket, 'room:join', { roomCode: room.code, guestName: 'after' });
    const seen = record(after1.socket);
    await ok(pubs[0]!.socket, 'room:publish', { type: 'after', data: 1, clientMsgId: 'after' });
    await until(() => seen.some((e) => e.name === 'room:event' && e.payload.type === 'after'), 5000, 'broadcast after the restart');
  });
});

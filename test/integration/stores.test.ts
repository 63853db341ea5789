/**
 * The typed stores and the membership service in-process, against a real redis-server (no worker
 * process): each script's contract — stale epochs are no-ops, the flush race, one TTL rule for a
 * room's keys, dedup, playback permissions and buffers — and the number of sequential Redis round
 * trips a rejoin costs, counted so it cannot regress.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { Keys } from '../../src/redis/keys.ts';
import { Scripts, SCRIPT_KEYS } from '../../src/redis/scripts.ts';
import { connectRedis, type RedisCommands, type RedisConnections } from '../../src/redis/client.ts';
import { Jobs, partitionOf } from '../../src/jobs/queues.ts';
import { Limits } from '../../src/limits/limits.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { RoomStore } from '../../src/rooms/store.ts';
import { RoomService } from '../../src/rooms/service.ts';
import { SessionStore } from '../../src/sessions/store.ts';
import { MembershipStore } from '../../src/membership/store.ts';
import { MembershipService } from '../../src/membership/service.ts';
import { EventStore } from '../../src/events/store.ts';
import { EventService } from '../../src/events/service.ts';
import { PlaybackStore } from '../../src/playback/store.ts';
import { Webhooks } from '../../src/webhooks/service.ts';
import type { Conn, ConnData, Fanout } from '../../src/fanout/port.ts';
import { TetherError } from '@tether/protocol';
import { redisClient, startRedis, type TestRedis, type TestRedisClient } from '../helpers/redis.ts';
import { readdirSync } from 'node:fs';

let redis: TestRedis;
let conns: RedisConnections;
/** The stores' connection, of the topology under test (TEST_REDIS_TOPOLOGY). */
let client: RedisCommands;
/** For arranging and inspecting keys. */
let raw: TestRedisClient;
let config: Config;
let keys: Keys;
let scripts: Scripts;
let jobs: Jobs;
const log = createLogger({ level: 'silent', nodeId: 'stores-test' });

/** Sequential round trips: commands issued while others are in flight ride the same one. */
const trips = { inflight: 0, count: 0 };
function counted<T extends object>(target: T): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const out = (value as (...a: unknown[]) => unknown).apply(obj, args);
        if (!(out instanceof Promise)) return out;
        if (trips.inflight++ === 0) trips.count++;
        return out.finally(() => trips.inflight--);
      };
    },
  });
}

before(async () => {
  redis = await startRedis();
  config = loadConfig({ ...redis.env, KEY_PREFIX: redis.prefix, GRACE_PERIOD_MS: '60000', RECONNECT_FLUSH_MS: '60000', ROOM_TTL_MS: '600000' });
  conns = await connectRedis(config.redis, log);
  client = conns.commands;
  raw = await redisClient(redis.url);
  keys = new Keys(redis.prefix);
  scripts = new Scripts(counted(client), () => conns.masters());
  await scripts.load();
  jobs = new Jobs(conns.queue, (p) => keys.bullPrefix(p), config.redis.queuePartitions, log);
});
after(async () => {
  await jobs?.close();
  await conns?.close();
  await raw?.quit();
  await redis?.stop();
});

class FakeFanout implements Fanout {
  sent: { to: string; event: string; payload: unknown }[] = [];
  toRoom(roomId: string, event: string, payload: unknown) {
    this.sent.push({ to: `room:${roomId}`, event, payload });
  }
  /** Scripts never broadcast here: every sequenced event goes through toRoom. */
  fromScript() {
    return null;
  }
  toRoomLocal(roomId: string, event: string, payload: unknown) {
    this.sent.push({ to: `local:${roomId}`, event, payload });
  }
  toUser(userId: string, event: string, payload: unknown) {
    this.sent.push({ to: `user:${userId}`, event, payload });
  }
  replace() {}
  deliveredSeq() {
    return 0;
  }
  /** No stream is held here: every join reads its window from the log. */
  streamHold() {
    return null;
  }
  *localRooms() {}
  *localConns() {}
}

function fakeConn(data: Partial<ConnData> & { clientId: string; epoch: number }): Conn & { got: { event: string; payload: any }[]; rooms: Set<string> } {
  const got: { event: string; payload: any }[] = [];
  const rooms = new Set<string>();
  return {
    id: `sock-${data.clientId}-${data.epoch}`,
    data: { userId: null, name: 'n', nodeInstance: 'i', connectedAt: 0, roomId: null, programRooms: [], replaced: false, address: '127.0.0.1', ...data },
    address: '10.0.0.1',
    connected: true,
    got,
    rooms,
    emit: (event: string, payload: unknown) => void got.push({ event, payload }),
    joinRoom: async (id: string) => (rooms.add(id), { late: null }),
    leaveRoom: async (id: string) => void rooms.delete(id),
    joinUser: async () => undefined,
    toOthersInRoom: () => undefined,
    closeTransport: () => undefined,
  } as unknown as Conn & { got: { event: string; payload: any }[]; rooms: Set<string> };
}

function world(cfg: Config = config) {
  const fanout = new FakeFanout();
  const limits = new Limits(cfg, conns.client, log);
  const roomStore = new RoomStore(cfg, client, scripts, keys);
  const sessions = new SessionStore(cfg, counted(client), scripts, keys);
  const webhooks = new Webhooks(cfg, client, () => conns.masters(), keys, jobs, log);
  const rooms = new RoomService(cfg, roomStore, limits, webhooks);
  const events = new EventService(cfg, new EventStore(cfg, client, scripts, keys), fanout);
  const store = new MembershipStore(cfg, scripts, keys);
  const membership = new MembershipService(cfg, store, sessions, roomStore, rooms, events, limits, counted(jobs), fanout, webhooks, log);
  return { fanout, roomStore, sessions, rooms, events, store, membership };
}

async function session(sessions: SessionStore, clientId: string): Promise<number> {
  return (await sessions.connect({ clientId, presentedTokenHash: 'h', newTokenHash: 'h', userId: null, socketId: `s-${clientId}`, nodeInstance: 'i' })).epoch;
}

describe('stores against a real Redis', () => {
  test('the script registry and the files agree', () => {
    const files = readdirSync(new URL('../../src/redis/scripts/', import.meta.url)).filter((f) => f.endsWith('.lua'));
    assert.deepEqual(files.map((f) => f.replace(/\.lua$/, '')).sort(), Object.entries(SCRIPT_KEYS).map(([n, k]) => `${n}-${k}`).sort());
  });

  test('a handshake records its session and the node index in 1 round trip (2 on a Cluster: another slot)', async () => {
    const w = world();
    trips.count = 0;
    const first = await w.sessions.connect({ clientId: 'hs-client', presentedTokenHash: null, newTokenHash: 'th', userId: null, socketId: 'sock-1', nodeInstance: 'inst-a' });
    const handshakeTrips = trips.count;
    process.stdout.write(`# handshake (session + node index): ${handshakeTrips} sequential round trips\n`);
    assert.equal(handshakeTrips, redis.topology === 'cluster' ? 2 : 1);
    assert.equal(await raw.hGet(keys.nodeConnections('inst-a'), 'hs-client'), String(first.epoch));
    // A reconnect under another instance: indexed there under its new epoch; a refused one nowhere.
    const second = await w.sessions.connect({ clientId: 'hs-client', presentedTokenHash: 'th', newTokenHash: 'x', userId: null, socketId: 'sock-2', nodeInstance: 'inst-b' });
    assert.equal(second.epoch, first.epoch + 1);
    assert.equal(await raw.hGet(keys.nodeConnections('inst-b'), 'hs-client'), String(second.epoch));
    await assert.rejects(w.sessions.connect({ clientId: 'hs-client', presentedTokenHash: 'wrong', newTokenHash: 'y', userId: null, socketId: 'sock-3', nodeInstance: 'inst-c' }), /SESSION_INVALID|token/i);
    assert.equal(await raw.hGet(keys.nodeConnections('inst-c'), 'hs-client'), null);
  });

  test('admission checks the entry in its own read: a program room by code, a password hash to verify first', async () => {
    const w = world();
    const m = (clientId: string) => ({ clientId, userId: null, name: clientId, epoch: 1 });
    await w.rooms.ensureProgramRoom('prog-entry');
    await assert.rejects(w.store.admit('prog-entry', m('p1'), Date.now(), null), (e: TetherError) => e.code === 'NOT_IN_ROOM');
    await assert.rejects(w.store.admit('NOSUCHRM', m('p1'), Date.now(), null), (e: TetherError) => e.code === 'ROOM_NOT_FOUND');

    const room = await w.rooms.create({ password: 'pw' }, { userId: 'host' }, 'http');
    const first = await w.store.admit(room.code, m('p2'), Date.now(), null);
    assert.equal(first.kind, 'password');
    const hash = (first as { passwordHash: string }).passwordHash;
    assert.match(hash, /^scrypt\$/);
    assert.equal(await raw.hExists(keys.room(room.code).members, 'p2'), 0, 'not seated before the password is checked');
    assert.equal((await w.store.admit(room.code, m('p2'), Date.now(), null, 'scrypt$not-the-hash')).kind, 'password');
    assert.equal((await w.store.admit(room.code, m('p2'), Date.now(), null, hash)).kind, 'admitted');
    assert.equal((await w.store.admit(room.code, m('p2'), Date.now(), null, hash)).kind, 'member');
    // Through the service: the claim is released when the password is wrong, and the right one admits.
    const e = await session(w.sessions, 'p3');
    const conn = fakeConn({ clientId: 'p3', epoch: e });
    await assert.rejects(w.membership.join(conn, { roomCode: room.code, password: 'nope' }), (err: TetherError) => err.code === 'INVALID_PASSWORD');
    assert.equal(await raw.hGet(keys.session('p3'), 'roomId'), null, 'claim released');
    const joined = await w.membership.join(conn, { roomCode: room.code, password: 'pw' });
    assert.equal(joined.self.clientId, 'p3');
  });

  test('a rejoin costs at most 2 sequential round trips (flush + fill ride one), and cancels nothing', async () => {
    const w = world();
    const room = await w.rooms.create({}, { userId: 'host' }, 'http');
    const e1 = await session(w.sessions, 'rt-client');
    const conn1 = fakeConn({ clientId: 'rt-client', epoch: e1 });
    await w.membership.join(conn1, { roomCode: room.code, guestName: 'rt' });
    await w.membership.disconnected('rt-client', e1, 'transport close'); // away + eviction job
    const e2 = await session(w.sessions, 'rt-client');
    const conn2 = fakeConn({ clientId: 'rt-client', epoch: e2, roomId: room.code });
    trips.count = 0;
    const { result } = await w.membership.rejoin(conn2, room.code, { lastSeq: 1 });
    const rejoinTrips = trips.count;
    process.stdout.write(`# rejoin (was away, replay): ${rejoinTrips} sequential round trips\n`);
    assert.ok(rejoinTrips <= 2, `rejoin took ${rejoinTrips} round trips`);
    assert.equal(result.recovered, true);
    assert.ok(conn2.rooms.has(room.code));
    // The member left the away set, which is all its window's eviction job reads.
    assert.equal(await raw.zScore(keys.room(room.code).away, 'rt-client'), null);
  });

  test('evictions are batched: one job per room and window, evicting only who is still away', async () => {
    const cfg = loadConfig({ ...redis.env, KEY_PREFIX: redis.prefix, GRACE_PERIOD_MS: '60000', EVICT_WINDOW_MS: '10000', RECONNECT_FLUSH_MS: '60000', ROOM_TTL_MS: '600000' });
    const w = world(cfg);
    const room = await w.rooms.create({}, { userId: 'host' }, 'http');
    const members: { clientId: string; epoch: number }[] = [];
    for (let i = 0; i < 30; i++) {
      const clientId = `win-${i}`;
      const epoch = await session(w.sessions, clientId);
      await w.membership.join(fakeConn({ clientId, epoch }), { roomCode: room.code, guestName: `m${i}` });
      members.push({ clientId, epoch });
    }
    const queue = jobs['queue']('evict-window', partitionOf(room.code, cfg.redis.queuePartitions));
    const before = await queue.getJobCounts('delayed');
    const t0 = Date.now();
    await Promise.all(members.map((m) => w.membership.disconnected(m.clientId, m.epoch, 'transport close')));
    const firstWindow = Math.ceil((t0 + 60_000) / 10_000) * 10_000;
    const delayed = (await queue.getJobs(['delayed'])).filter((j) => j.data.roomId === room.code);
    // 30 drops inside one window (or two, when the window edge fell between them): one job each.
    assert.ok(delayed.length >= 1 && delayed.length <= 2, `${delayed.length} eviction jobs for 30 drops`);
    assert.ok((await queue.getJobCounts('delayed')).delayed - before.delayed <= 2);
    assert.ok(delayed.some((j) => j.data.windowEnd === firstWindow), 'the window the grace periods end in');
    const away = keys.room(room.code).away;
    assert.equal(await raw.zCard(away), 30);
    // Ten come back (one after a second drop, under a later grace period), five leave for good.
    for (const m of members.slice(0, 10)) {
      const epoch = await session(w.sessions, m.clientId);
      await w.membership.rejoin(fakeConn({ clientId: m.clientId, epoch, roomId: room.code }), room.code, {});
      m.epoch = epoch;
    }
    for (const m of members.slice(10, 15)) await w.store.remove(room.code, m.clientId, { mode: 'kick', epoch: 0, reason: 'kicked' }, null);
    assert.equal(await raw.zCard(away), 15);
    // The window's job runs once every grace period ended (rewound here instead of waited for).
    for (const m of members.slice(15)) await raw.zAdd(away, { score: Date.now() - 1, value: m.clientId });
    const later = members[15]!;
    await raw.zAdd(away, { score: Date.now() + 3_600_000, value: later.clientId });
    w.fanout.sent.length = 0;
    assert.equal(await w.membership.evictWindow(room.code, Math.ceil(Date.now() / 10_000) * 10_000), 'done');
    const left = w.fanout.sent.filter((x) => x.event === 'room:participant:left').map((x) => (x.payload as { clientId: string }).clientId).sort();
    assert.deepEqual(left, members.slice(16).map((m) => m.clientId).sort(), 'exactly the members still away and due');
    for (const m of members.slice(0, 10)) assert.ok(await raw.hGet(keys.room(room.code).members, m.clientId), `${m.clientId} kept its seat`);
    assert.deepEqual(await raw.zRange(away, 0, -1), [later.clientId]);
    // The one still away for later gets its own window's job (the net when windows were scheduled by another clock).
    const laterEnd = Math.ceil((Number(await raw.zScore(away, later.clientId))) / 10_000) * 10_000;
    assert.ok(await queue.getJob(`evict-${room.code}-${laterEnd}`), 'a job for the next window someone is due in');
    // A repeated drop (the reaper after the worker's own handler) does not extend the grace period.
    const evictAt = await raw.zScore(away, later.clientId);
    await w.store.markAway(room.code, later.clientId, later.epoch, Date.now() + 7_200_000);
    assert.equal(await raw.zScore(away, later.clientId), evictAt);
  });

  test('stale epochs are no-ops: an old rejoin, an old leave, an old eviction, an old away', async () => {
    const w = world();
    const room = await w.rooms.create({}, { userId: 'host' }, 'http');
    const e1 = await session(w.sessions, 'stale-c');
    await w.membership.join(fakeConn({ clientId: 'stale-c', epoch: e1 }), { roomCode: room.code, guestName: 's' });
    const e2 = await session(w.sessions, 'stale-c');
    await w.membership.rejoin(fakeConn({ clientId: 'stale-c', epoch: e2, roomId: room.code }), room.code, {});
    // The replaced connection's rejoin arrives late: refused, the member keeps epoch e2.
    await assert.rejects(w.membership.rejoin(fakeConn({ clientId: 'stale-c', epoch: e1, roomId: room.code }), room.code, {}), (err: TetherError) => err.code === 'SESSION_REPLACED');
    // Its deliberate goodbye, processed late, does not take the seat.
    assert.equal(await w.store.remove(room.code, 'stale-c', { mode: 'leave', epoch: e1, reason: 'left' }, null), null);
    // Its away and its eviction find the epoch moved on.
    assert.equal(await w.store.markAway(room.code, 'stale-c', e1, Date.now() + 60_000), null);
    assert.equal(await w.membership.evict({ clientId: 'stale-c', roomId: room.code, epoch: e1 }), 'stale');
    const m = JSON.parse((await raw.hGet(keys.room(room.code).members, 'stale-c'))!) as { status: string; epoch: number };
    assert.deepEqual([m.status, m.epoch], ['online', e2]);
  });

  test('the flush race: a return that lands while a flush runs is announced by the next flush', async () => {
    const w = world();
    const room = await w.rooms.create({}, { userId: 'host' }, 'http');
    const ids = ['f1', 'f2'];
    const epochs: number[] = [];
    for (const id of ids) {
      const e = await session(w.sessions, id);
      epochs.push(e);
      await w.membership.join(fakeConn({ clientId: id, epoch: e }), { roomCode: room.code, guestName: id });
    }
    const away1 = await w.store.markAway(room.code, 'f1', epochs[0]!, Date.now() + 60_000);
    assert.ok(away1 && away1.flushGeneration > 0, 'the first change requests a flush');
    const away2 = await w.store.markAway(room.code, 'f2', epochs[1]!, Date.now() + 60_000);
    assert.equal(away2?.flushGeneration, 0, 'one flush per window');
    const first = await w.store.flush(room.code, null);
    assert.deepEqual(first?.batch.away.sort(), ['f1', 'f2']);
    // f1 comes back right after the flush took the set: the flag is gone, so this rejoin asks for the next flush.
    const e = await session(w.sessions, 'f1');
    const back = await w.store.rejoin(room.code, { clientId: 'f1', epoch: e, member: true, now: Date.now() });
    assert.ok(back && back.wasAway && back.flushGeneration > away1.flushGeneration);
    const second = await w.store.flush(room.code, null);
    assert.deepEqual(second?.batch.returned, ['f1']);
    // Away and back within one window: announced not at all.
    const e3 = await session(w.sessions, 'f1');
    await w.store.markAway(room.code, 'f1', e, Date.now() + 60_000);
    await w.store.rejoin(room.code, { clientId: 'f1', epoch: e3, member: true, now: Date.now() });
    assert.equal(await w.store.flush(room.code, null), null, 'a blip within a window announces nothing');
  });

  test('one TTL rule: activity refreshes every state key of the room, pending included', async () => {
    const w = world();
    const room = await w.rooms.create({}, { userId: 'host' }, 'http');
    const e = await session(w.sessions, 'ttl-c');
    await w.membership.join(fakeConn({ clientId: 'ttl-c', epoch: e, userId: null }), { roomCode: room.code, guestName: 't' });
    await raw.hSet(keys.room(room.code).users, 'someone', '1');
    await raw.hSet(keys.room(room.code).playback, 'gen', '1');
    await raw.hSet(keys.room(room.code).rtt, 'ttl-c', '20');
    await w.store.markAway(room.code, 'ttl-c', e, Date.now() + 60_000); // creates pending
    for (const k of keys.roomState(room.code)) await raw.pExpire(k, 5000);
    await new EventStore(config, client, scripts, keys).append({ roomId: room.code, from: 'svc', dedupKey: null, payloadJson: `{"roomId":"${room.code}","type":"x","data":1,"from":"svc","ts":1}`, requireMember: false, budget: null, broadcast: null });
    for (const k of keys.roomState(room.code)) {
      const ttl = await raw.pTTL(k);
      assert.ok(ttl > 500_000, `${k.split(':').pop()} refreshed to the room TTL (${ttl})`);
    }
  });

  test('mass joins: from JOIN_BATCH_THRESHOLD members on, a first join waits for the presence batch, which carries it once', async () => {
    const cfg = loadConfig({ ...redis.env, KEY_PREFIX: redis.prefix, GRACE_PERIOD_MS: '60000', RECONNECT_FLUSH_MS: '60000', ROOM_TTL_MS: '600000', JOIN_BATCH_THRESHOLD: '2' });
    const w = world(cfg);
    const room = await w.rooms.create({}, { userId: 'host' }, 'http');
    const joinedBroadcasts = () => w.fanout.sent.filter((x) => x.event === 'room:participant:joined').length;
    const conns: Record<string, ReturnType<typeof fakeConn>> = {};
    const join = async (id: string) => {
      const e = await session(w.sessions, id);
      conns[id] = fakeConn({ clientId: id, epoch: e });
      return w.membership.join(conns[id]!, { roomCode: room.code, guestName: id });
    };
    await join('mj1');
    await join('mj2');
    assert.equal(joinedBroadcasts(), 2, 'below the threshold: one room:participant:joined per join');
    const seqBefore = (await new EventStore(config, client, scripts, keys).head(room.code))!.seq;
    const third = await join('mj3');
    assert.equal(joinedBroadcasts(), 2, 'at the threshold: no broadcast of its own');
    assert.equal(third.seq, seqBefore, 'nothing appended: room:state is at the room\'s position');
    assert.ok(third.participants.some((p) => p.clientId === 'mj3'), 'the joiner gets its room:state at once, itself included');
    assert.equal(conns.mj3!.got.find((g) => g.event === 'room:state')?.payload.seq, seqBefore);
    const flushJobs = (await jobs['queue']('flush', partitionOf(room.code, config.redis.queuePartitions)).getDelayed()).filter((j) => j.data.roomId === room.code);
    assert.equal(flushJobs.length, 1, 'one flush job scheduled for the window');
    await join('mj4');
    await join('mj5');
    assert.equal((await jobs['queue']('flush', partitionOf(room.code, config.redis.queuePartitions)).getDelayed()).filter((j) => j.data.roomId === room.code).length, 1, 'still one flush job per window');
    await w.store.markAway(room.code, 'mj4', conns.mj4!.data.epoch, Date.now() + 60_000); // away again within the window
    await w.membership.leave(conns.mj5!, room.code); // gone before anyone heard of it
    const flushed = await w.store.flush(room.code, null);
    assert.ok(flushed);
    assert.deepEqual(flushed.batch.joined?.map((p) => [p.clientId, p.status]), [['mj3', 'online'], ['mj4', 'away']], 'joined as they are at the flush; the one that left is not announced');
    assert.deepEqual([flushed.batch.returned, flushed.batch.away], [[], []], 'a joined member is announced once, not also as away');
    assert.equal(flushed.changes, 2);
    assert.equal(await w.store.flush(room.code, null), null, 'announced once: the next window has nothing');
    // A batched member's later status changes are ordinary presence.
    const e = await session(w.sessions, 'mj4');
    const back = await w.store.rejoin(room.code, { clientId: 'mj4', epoch: e, member: true, now: Date.now() });
    assert.ok(back?.wasAway);
    assert.deepEqual((await w.store.flush(room.code, null))?.batch.returned, ['mj4']);
  });

  test('dedup: a resend appends nothing and returns the logged original; a resend takes no budget', async () => {
    const w = world();
    const room = await w.rooms.create({}, { userId: 'host' }, 'http');
    const store = new EventStore(config, client, scripts, keys);
    const payload = (n: number) => `{"roomId":"${room.code}","type":"x","data":${n},"from":"c","ts":1}`;
    const first = await store.append({ roomId: room.code, from: 'c', dedupKey: 'c|m1', payloadJson: payload(1), requireMember: false, budget: 'c:c', broadcast: null });
    const again = await store.append({ roomId: room.code, from: 'c', dedupKey: 'c|m1', payloadJson: payload(2), requireMember: false, budget: 'c:c', broadcast: null });
    assert.equal(first.duplicate, false);
    assert.equal(again.duplicate, true);
    assert.equal(again.seq, first.seq);
    assert.deepEqual(again.duplicate && again.original?.payload, { seq: first.seq, roomId: room.code, type: 'x', data: 1, from: 'c', ts: 1 });
    assert.equal((await store.head(room.code))?.seq, first.seq, 'nothing appended');
  });

  test('playback permissions and the sync buffer are decided by the scripts', async () => {
    const w = world();
    const room = await w.rooms.create({}, { userId: 'host-user' }, 'http');
    const pb = new PlaybackStore(config, scripts, keys);
    const eh = await session(w.sessions, 'pb-host');
    await w.membership.join(fakeConn({ clientId: 'pb-host', epoch: eh, userId: 'host-user' }), { roomCode: room.code });
    const em = await session(w.sessions, 'pb-member');
    await w.membership.join(fakeConn({ clientId: 'pb-member', epoch: em }), { roomCode: room.code, guestName: 'm' });
    const now = Date.now();
    await assert.rejects(pb.command(room.code, { clientId: 'pb-member', action: 'start', trackId: 't', now, broadcast: null }), (e: TetherError) => e.code === 'UNAUTHORIZED');
    await assert.rejects(pb.command(room.code, { clientId: 'stranger', action: 'start', trackId: 't', now, broadcast: null }), (e: TetherError) => e.code === 'NOT_IN_ROOM');
    // Default RTT 50 → buffer clamp(100, 100, 500) = 100; the slowest member decides.
    const started = await pb.command(room.code, { clientId: 'pb-host', action: 'start', trackId: 't', now, broadcast: null });
    assert.ok(started.applied && started.event.syncBufferMs === 100);
    await pb.reportRtt(room.code, 'pb-member', 180, true);
    const seek = await pb.command(room.code, { clientId: 'pb-host', action: 'seek', positionMs: 10, now, broadcast: null });
    assert.ok(seek.applied && seek.event.syncBufferMs === 360);
    await pb.reportRtt(room.code, 'pb-member', 10_000, true);
    const capped = await pb.command(room.code, { clientId: 'pb-host', action: 'pause', now, broadcast: null });
    assert.ok(capped.applied && capped.event.syncBufferMs === 500, 'cap');
    // Only the host grants; a granted member may command but not grant; the host keeps control.
    await assert.rejects(pb.grant(room.code, { hostClientId: 'pb-member', targetClientId: 'pb-host', allowed: false, broadcast: null }), (e: TetherError) => e.code === 'UNAUTHORIZED');
    assert.equal((await pb.grant(room.code, { hostClientId: 'pb-host', targetClientId: 'pb-host', allowed: false, broadcast: null })).status, 'host_keeps_control');
    assert.equal((await pb.grant(room.code, { hostClientId: 'pb-host', targetClientId: 'pb-member', allowed: true, broadcast: null })).status, 'granted');
    const byMember = await pb.command(room.code, { clientId: 'pb-member', action: 'seek', positionMs: 5, now, broadcast: null });
    assert.ok(byMember.applied);
    await assert.rejects(pb.grant(room.code, { hostClientId: 'pb-member', targetClientId: 'pb-member', allowed: true, broadcast: null }), (e: TetherError) => e.code === 'UNAUTHORIZED');
  });
  test('a script unknown to a master (flushed, a promoted replica, a slot\'s new owner) falls back to EVAL on that very master', async () => {
    const w = world();
    const masters = (await conns.masters()) as unknown as TestRedisClient[];
    const sha = (scripts as unknown as { scripts: Map<string, { sha: string }> }).scripts.get('snapshot')!.sha;
    // Rooms whose slots cover every master of the topology (24 ids over 3 masters: checked below).
    const rooms = await Promise.all(Array.from({ length: 24 }, (_, i) => w.rooms.create({}, { userId: `ns-${i}` }, 'http')));
    for (const m of masters) await m.scriptFlush();
    for (const m of masters) assert.deepEqual(await m.scriptExists(sha), [0]);
    for (const room of rooms) assert.equal((await w.roomStore.snapshot(room.id)).room.id, room.id);
    // Every master that was asked loaded the script through the fallback — all of them.
    for (const m of masters) assert.deepEqual(await m.scriptExists(sha), [1], 'each master got the script by EVAL');
    process.stdout.write(`# NOSCRIPT fallback exercised on ${masters.length} master(s)\n`);
  });
});

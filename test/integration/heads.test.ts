/**
 * Room heads (src/events/heads.ts) tick by tick, against a real redis-server: when a room settles
 * its head goes out once; while it is busy, only when this worker fell behind it (what Redis held an
 * interval ago was never broadcast here). The fanout is a stand-in whose delivered seq the test sets:
 * the real one (BroadcastMarks) is exercised by the cluster tests of lost broadcasts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { Keys } from '../../src/redis/keys.ts';
import { Scripts } from '../../src/redis/scripts.ts';
import { connectRedis, type RedisCommands, type RedisConnections } from '../../src/redis/client.ts';
import { RoomStore } from '../../src/rooms/store.ts';
import { EventStore } from '../../src/events/store.ts';
import { RoomHeads } from '../../src/events/heads.ts';
import { createLogger } from '../../src/observability/logger.ts';
import type { Fanout } from '../../src/fanout/port.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

let redis: TestRedis;
let conns: RedisConnections;
/** The stores' connection, of the topology under test (TEST_REDIS_TOPOLOGY). */
let client: RedisCommands;
let config: Config;
let keys: Keys;
let scripts: Scripts;

before(async () => {
  redis = await startRedis();
  config = loadConfig({ ...redis.env, KEY_PREFIX: redis.prefix, ROOM_HEAD_INTERVAL_MS: '1000' });
  conns = await connectRedis(config.redis, createLogger({ level: 'silent', nodeId: 'heads-test' }));
  client = conns.commands;
  keys = new Keys(redis.prefix);
  scripts = new Scripts(client, () => conns.masters());
  await scripts.load();
});
after(async () => {
  await conns?.close();
  await redis?.stop();
});

class LocalFanout {
  heads: { roomId: string; seq: number }[] = [];
  delivered = 0;
  constructor(private readonly rooms: string[]) {}
  toRoomLocal(roomId: string, _event: string, payload: { seq: number }) {
    this.heads.push({ roomId, seq: payload.seq });
  }
  deliveredSeq() {
    return this.delivered;
  }
  *localRooms() {
    yield* this.rooms;
  }
}

test('heads: once when a room settles; while it is busy only when this worker fell behind', async () => {
  const roomId = 'HEADROOM';
  const rooms = new RoomStore(config, client, scripts, keys);
  await rooms.create({ id: roomId, code: roomId, name: 'h', kind: 'room', passwordHash: '', maxParticipants: 10, createdAt: Date.now(), hostUserId: 'u', incarnation: 'inc1' });
  const events = new EventStore(config, client, scripts, keys);
  let n = 0;
  const publish = async () => {
    const r = await events.append({ roomId, from: 'svc', dedupKey: null, payloadJson: `{"roomId":"${roomId}","type":"x","data":${n++},"from":"svc","ts":1}`, requireMember: false, budget: null, broadcast: null });
    assert.equal(r.duplicate, false);
    return r.seq;
  };
  const fanout = new LocalFanout([roomId]);
  const heads = new RoomHeads(config, events, fanout as unknown as Fanout, createLogger({ level: 'silent', nodeId: 'heads-test' }));
  const tick = async () => {
    fanout.heads = [];
    await heads.tick();
    return fanout.heads.map((h) => h.seq);
  };

  let seq = await publish();
  fanout.delivered = seq;
  assert.deepEqual(await tick(), [], 'first sight counts as a move: no head yet');
  assert.deepEqual(await tick(), [seq], 'settled: the head goes out');
  assert.deepEqual(await tick(), [], 'once');

  // Busy, and every broadcast reached this worker: no head per interval.
  for (let i = 0; i < 3; i++) {
    seq = await publish();
    fanout.delivered = seq;
    assert.deepEqual(await tick(), [], `busy interval ${i}: no head`);
  }
  assert.deepEqual(await tick(), [seq], 'settled again: one head');

  // Busy, but this worker's stream stopped: what Redis held an interval ago was never delivered here.
  const stuckAt = fanout.delivered;
  const s1 = await publish();
  assert.deepEqual(await tick(), [], 'the interval it moved in: its broadcast may still be on the way');
  assert.equal(fanout.delivered, stuckAt);
  const s2 = await publish();
  assert.deepEqual(await tick(), [s2], `behind (${s1} was never delivered here): a head while still busy`);
  // The stream is back: a later broadcast arrived.
  await publish();
  fanout.delivered = await publish();
  assert.deepEqual(await tick(), [], 'caught up: no head while busy');
  assert.deepEqual(await tick(), [fanout.delivered], 'settled: one head');
});

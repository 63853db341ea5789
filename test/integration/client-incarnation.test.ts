/**
 * Issue #11 point 6 in the SDK against a real worker and Redis: a room that expired and was created
 * again while the client was away starts its seq again under a new incarnation; the SDK's rejoin
 * presents (incarnation, lastSeq), so the new life is never replayed as a continuation of the old
 * one — the room resumes from a snapshot (`recovered: false`).
 * Run `npm run build` first when dist/ is stale.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { TetherClient } from '../../packages/client/src/index.ts';
import type { Room, TetherClientOptions } from '../../packages/client/src/index.ts';
import { Keys } from '../../src/redis/keys.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { redisClient } from '../helpers/redis.ts';
import { publishHttp, signJwt, until } from '../helpers/clients.ts';

let cluster: TestCluster;
const clients = new Set<TetherClient>();

before(async () => {
  cluster = await startCluster(1);
});

after(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

function client(opts: Partial<TetherClientOptions>): TetherClient {
  const c = new TetherClient({ url: cluster.workers[0]!.url, clockSync: false, requestTimeoutMs: 4000, connectTimeoutMs: 4000, reconnect: { baseMs: 50, maxMs: 300 }, ...opts });
  c.on('error', () => undefined);
  clients.add(c);
  return c;
}

async function publish(roomId: string, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await publishHttp(cluster.workers[0]!.url, roomId, { type: tag, data: i });
    assert.equal(res.status, 201, await res.clone().text());
  }
}

test('a program room recreated while the client is away: its rejoin gets a snapshot of the new life, not a replay', { timeout: 60_000 }, async () => {
  const roomId = `prog-${randomUUID().slice(0, 8)}`;
  const sub = `user-${randomUUID().slice(0, 8)}`;
  // getToken runs before every connection attempt: holding it keeps the client away.
  let gate: Promise<void> = Promise.resolve();
  let open = () => undefined as void;
  const c = client({ getToken: async () => (await gate, signJwt({ sub, rooms: [roomId] })) });
  const seen: { name: string; seq: number; type?: string }[] = [];
  const resumed: boolean[] = [];
  const appeared = new Promise<Room>((resolve) =>
    c.on('room', (room) => {
      room.on('sequenced', (e) => void seen.push({ name: e.name, seq: e.seq, ...(e.name === 'room:event' ? { type: e.payload.type } : {}) }));
      room.on('resumed', (r) => void resumed.push(r.recovered));
      resolve(room);
    }),
  );
  await c.connect();
  const room = await appeared;
  await until(() => room.status === 'live', 5000, 'program room live');
  await publish(roomId, 3, 'old');
  await until(() => room.seq === 3, 5000, 'first life at seq 3');
  const firstLife = room.incarnation;
  assert.ok(firstLife, 'the state carried an incarnation');

  // Away: the connection drops and the next attempt waits for its token.
  gate = new Promise<void>((resolve) => (open = resolve));
  c.socket.io.engine.close();
  await until(() => c.status.state !== 'connected', 5000, 'disconnected');

  // The room expires and is created again under the same id (another member connects), then gets
  // further than the first life did.
  const r = await redisClient(cluster.redis.url);
  try {
    await r.del(Object.values(new Keys(cluster.redis.prefix).room(roomId)).filter((k): k is string => typeof k === 'string'));
  } finally {
    await r.quit();
  }
  const other = client({ getToken: () => signJwt({ sub: `other-${sub}`, rooms: [roomId] }) });
  await other.connect();
  await publish(roomId, 6, 'new');
  const log = await other.request('room:catchup', { roomId, fromSeq: 0, limit: 100 });
  assert.notEqual(log.incarnation, firstLife, 'the worker gave the new life a new incarnation');
  const lastSeq = log.events.at(-1)!.seq;
  assert.ok(lastSeq > 3, 'the new life is past the old position');

  open();
  await until(() => resumed.length === 1, 10_000, 'resumed');
  assert.deepEqual(resumed, [false], 'another incarnation: a snapshot, said so');
  assert.equal(room.incarnation, log.incarnation);
  assert.equal(room.seq, lastSeq);
  assert.deepEqual(
    seen.filter((e) => e.type === 'new'),
    [],
    `none of the new life's events was applied as if it continued the old one (saw ${JSON.stringify(seen)})`,
  );
  await publish(roomId, 1, 'after');
  await until(() => seen.at(-1)?.type === 'after', 5000, 'live again');
  assert.equal(seen.at(-1)!.seq, lastSeq + 1);
});

/**
 * Sentinel failover (issue #14): 1 master, 2 replicas, 3 Sentinels on loopback, every data node
 * with AOF and `appendfsync always`; two workers with REDIS_MODE=sentinel and
 * REDIS_WAIT_REPLICAS=1. A publisher on worker A publishes without pause, listeners on worker B.
 * The master is SIGKILLed mid-stream; the Sentinels promote a replica; the workers (node-redis
 * Sentinel clients for commands and the adapter, an ioredis Sentinel client for BullMQ) follow it.
 * The publisher resends what was not acknowledged with the same clientMsgId, as a client does.
 * Afterwards:
 * - every acknowledged seq is in the new master's log (what WAIT guarantees: an acknowledged write
 *   was on a replica before the ack, and Sentinel promotes the most up-to-date replica);
 * - every message was published exactly once (dedup survived the failover with its log);
 * - listeners on B receive live broadcasts after the failover (the adapter re-subscribed on the
 *   new master); grace evictions still run (BullMQ on the new master).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { redisCli, startSentinelTopology, type TestSentinel } from '../helpers/redis.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { closeAll, connect, createRoomHttp, ok, record, request, until } from '../helpers/clients.ts';
import { Keys } from '../../src/redis/keys.ts';

const ENV = {
  ROOM_HEAD_INTERVAL_MS: '0',
  PUBLISH_RATE_PER_SEC: '100000',
  PUBLISH_BURST: '100000',
  ROOM_PUBLISH_RATE_PER_SEC: '100000',
  ROOM_PUBLISH_BURST: '100000',
  GRACE_PERIOD_MS: '1500',
  REDIS_WAIT_REPLICAS: '1',
  REDIS_WAIT_TIMEOUT_MS: '1000',
};

let topo: TestSentinel;
let a: Worker;
let b: Worker;

before(async () => {
  topo = await startSentinelTopology({ replicas: 2 });
  [a, b] = await Promise.all([
    startWorker({ redisUrl: topo.url, prefix: topo.prefix, nodeId: 'sa', env: ENV }),
    startWorker({ redisUrl: topo.url, prefix: topo.prefix, nodeId: 'sb', env: ENV }),
  ]);
});
after(async () => {
  closeAll();
  await Promise.all([a, b].map((w) => w?.kill('SIGKILL')));
  await topo?.stop();
});

test('the master is killed mid-stream: a replica is promoted, workers follow, no acknowledged event is lost', async () => {
  const room = await createRoomHttp(a.url);
  const publisher = await connect(a.url, { reconnection: true });
  await ok(publisher.socket, 'room:join', { roomCode: room.code, guestName: 'pub' });
  const listeners = [];
  for (let i = 0; i < 2; i++) {
    const l = await connect(b.url, { reconnection: true });
    await ok(l.socket, 'room:join', { roomCode: room.code, guestName: `l${i}` });
    listeners.push(l);
  }
  const received = listeners.map((l) => record(l.socket));
  const liveSeqs = (i: number) => new Set(received[i]!.filter((e) => e.name === 'room:event').map((e) => e.payload.seq as number));

  const firstMaster = topo.masterPort();
  const acked = new Map<string, number>();
  const errors = new Map<string, number>();
  let stop = false;
  let n = 0;
  // One message at a time, resent with its clientMsgId until acknowledged (what the SDK does).
  const pump = async () => {
    while (!stop) {
      const id = `m${n++}`;
      for (;;) {
        const res = await request(publisher.socket, 'room:publish', { roomId: room.id, type: 'chat', data: { id }, clientMsgId: id }, 3000).catch((err: Error) => ({ ok: false as const, error: { code: 'TIMEOUT', message: err.message } }));
        if (res.ok) {
          acked.set(id, (res.data as { seq: number }).seq);
          break;
        }
        errors.set(res.error.code, (errors.get(res.error.code) ?? 0) + 1);
        await sleep(100);
      }
      await sleep(5);
    }
  };
  const pumps = [pump(), pump()];
  let failedOverAt = 0;
  try {
    await until(() => acked.size >= 30, 15_000, 'events flowing before the failover');
    const t0 = Date.now();
    topo.data.find((d) => d.port === firstMaster)!.process.kill('SIGKILL');
    await until(() => {
      try {
        return topo.masterPort() !== firstMaster;
      } catch {
        return false;
      }
    }, 30_000, 'a replica promoted');
    failedOverAt = Date.now() - t0;
    const before = acked.size;
    await until(() => acked.size >= before + 40, 30_000, 'events flowing after the failover');
  } finally {
    stop = true;
    await Promise.all(pumps);
  }

  const master = topo.masterPort();
  const r = createClient({ url: `redis://127.0.0.1:${master}`, RESP: 2 });
  r.on('error', () => undefined);
  await r.connect();
  try {
    const log = (await r.zRange(new Keys(topo.prefix).room(room.id).log, 0, -1)).map((x) => JSON.parse(x) as { seq: number; name: string; payload: { data?: { id?: string } } });
    const bySeq = new Map(log.map((e) => [e.seq, e]));
    const lost = [...acked].filter(([, seq]) => !bySeq.has(seq));
    assert.deepEqual(lost, [], 'every acknowledged event is in the new master\'s log');
    const ids = log.filter((e) => e.name === 'room:event').map((e) => e.payload.data?.id);
    assert.equal(new Set(ids).size, ids.length, 'every message in the log once (resends deduplicated)');
    for (const [id, seq] of acked) assert.equal(bySeq.get(seq)!.payload.data?.id, id, `seq ${seq} is message ${id}`);
  } finally {
    await r.close();
  }

  // Live broadcasts reach B after the failover: the last 20 acknowledged events, heads off.
  const tail = [...acked.values()].sort((x, y) => x - y).slice(-20);
  for (let i = 0; i < listeners.length; i++) await until(() => tail.every((s) => liveSeqs(i).has(s)), 15_000, `listener ${i} live after the failover`);

  // BullMQ follows too: a member whose socket drops is evicted after the grace period.
  const leaver = await connect(a.url);
  await ok(leaver.socket, 'room:join', { roomCode: room.code, guestName: 'leaver' });
  leaver.socket.io.engine.close();
  await until(() => received[0]!.some((e) => e.name === 'room:participant:left' && e.payload.clientId === leaver.session.clientId), 20_000, 'grace eviction on the new master');

  const replicationOf = (port: number) => redisCli(port, 'INFO', 'replication').stdout.match(/role:(\w+)/)?.[1];
  process.stdout.write(
    `# sentinel failover: master ${firstMaster} killed, ${master} promoted (${replicationOf(master)}) after ${failedOverAt} ms; ${acked.size} messages acknowledged, 0 lost; refusals while failing over ${JSON.stringify(Object.fromEntries(errors))}\n`,
  );
});

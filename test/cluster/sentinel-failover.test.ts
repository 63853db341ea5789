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
import { closeAll, connect, createRoomHttp, ok, publishHttp, until } from '../helpers/clients.ts';
import { TetherClient } from '../../packages/client/src/index.ts';
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
  LOG_LEVEL: 'info',
};

let topo: TestSentinel;
let a: Worker;
let b: Worker;
const sdk: TetherClient[] = [];

before(async () => {
  topo = await startSentinelTopology({ replicas: 2 });
  [a, b] = await Promise.all([
    startWorker({ redisUrl: topo.url, prefix: topo.prefix, nodeId: 'sa', env: ENV }),
    startWorker({ redisUrl: topo.url, prefix: topo.prefix, nodeId: 'sb', env: ENV }),
  ]);
});
after(async () => {
  for (const c of sdk) c.close();
  closeAll();
  await Promise.all([a, b].map((w) => w?.kill('SIGKILL')));
  await topo?.stop();
});

test('the master is killed mid-stream: a replica is promoted, workers follow, no acknowledged event is lost', async () => {
  try {
    // Bounded here rather than by the runner, so that a hang still prints what the workers said.
    // Unref'd: a pending 150 s timer kept the file's process alive 150 s after the test passed.
    await Promise.race([scenario(), sleep(150_000, undefined, { ref: false }).then(() => Promise.reject(new Error('scenario did not finish within 150 s')))]);
  } catch (err) {
    // What the workers said is the first thing to read on a failure.
    for (const w of [a, b]) process.stdout.write(`# ${w.nodeId}:\n${w.output.filter((l) => !/"queue"/.test(l)).slice(-40).map((l) => `#   ${l}`).join('\n')}\n`);
    throw err;
  }
});

async function scenario(): Promise<void> {
  const room = await createRoomHttp(a.url);
  // Listeners are SDK clients: a worker that fences itself when the failover outlasts its heartbeat
  // closes their sockets, and the SDK reconnects (retrying refused handshakes) and rejoins.
  const listeners = await Promise.all(
    [0, 1].map(async (i) => {
      const c = new TetherClient({ url: b.url, reconnect: { baseMs: 100, maxMs: 1000 }, retry: { baseMs: 100, maxMs: 1000 }, requestTimeoutMs: 5000, connectTimeoutMs: 5000 });
      c.on('error', () => undefined);
      sdk.push(c);
      const r = await c.join(room.id, { guestName: `l${i}` });
      const seqs = new Set<number>();
      r.on('sequenced', (e) => void seqs.add(e.seq));
      return { c, seqs };
    }),
  );
  const seenSeqs = (i: number) => listeners[i]!.seqs;

  const firstMaster = topo.masterPort();
  const acked = new Map<string, number>();
  const errors = new Map<string, number>();
  const unacked: string[] = [];
  let stop = false;
  let n = 0;
  // A backend publishing over HTTP to worker A, one message at a time, resending with the same
  // idempotencyKey until acknowledged.
  const publish = async (id: string): Promise<number | null> => {
    const since = Date.now();
    for (;;) {
      const res = await publishHttp(a.url, room.id, { type: 'chat', data: { id }, idempotencyKey: id }).catch(() => null);
      if (res && res.status < 300) return ((await res.json()) as { seq: number }).seq;
      const code = res ? String(res.status) : 'unreachable';
      errors.set(code, (errors.get(code) ?? 0) + 1);
      if (stop && Date.now() - since > 20_000) return null;
      await sleep(100);
    }
  };
  const pump = async () => {
    while (!stop) {
      const id = `m${n++}`;
      const seq = await publish(id);
      if (seq === null) unacked.push(id);
      else acked.set(id, seq);
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
    await until(() => acked.size >= before + 40, 60_000, 'events flowing after the failover');
  } finally {
    stop = true;
    await Promise.all(pumps);
  }
  assert.deepEqual(unacked, [], 'every message was eventually acknowledged');

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

  // Live broadcasts reach B after the failover (heads are off: nothing else delivers these).
  for (const l of listeners) await until(() => l.c.status.state === 'connected', 30_000, 'listeners connected');
  const burst: number[] = [];
  for (let i = 0; i < 10; i++) burst.push((await publish(`after-${i}`))!);
  for (let i = 0; i < listeners.length; i++) await until(() => burst.every((s) => seenSeqs(i).has(s)), 15_000, `listener ${i} live after the failover`);

  // BullMQ follows too: a member whose socket drops is evicted after the grace period.
  const leaver = await connect(b.url);
  await ok(leaver.socket, 'room:join', { roomCode: room.code, guestName: 'leaver' });
  const joinedAt = (await ok(leaver.socket, 'room:catchup', { roomId: room.id, fromSeq: 0 })).seq;
  leaver.socket.io.engine.close();
  // The eviction is the room's next event: it reaches the listeners once BullMQ ran it.
  await until(() => [...seenSeqs(0)].some((s) => s > joinedAt), 20_000, 'grace eviction on the new master');

  const replicationOf = (port: number) => redisCli(port, 'INFO', 'replication').stdout.match(/role:(\w+)/)?.[1];
  process.stdout.write(
    `# sentinel failover: master ${firstMaster} killed, ${master} promoted (${replicationOf(master)}) after ${failedOverAt} ms; ${acked.size} messages acknowledged, 0 lost; refusals while failing over ${JSON.stringify(Object.fromEntries(errors))}; workers fenced: ${[a, b].filter((w) => w.output.some((l) => l.includes('fencing'))).map((w) => w.nodeId).join(',') || 'none'}\n`,
  );
}

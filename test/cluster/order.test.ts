/**
 * A room's sequenced events reach every worker in seq order. With the classic adapter (standalone
 * Redis and Sentinel) the script that appends an event broadcasts it itself, in the step that
 * gives it its seq, so
 * the worker that ran the script receives it through Redis like every other worker. Before, each
 * worker emitted its own appends at once and the others' after the pub/sub hop: members saw holes
 * that closed a moment later, and under load every client of a busy room fetched them with
 * room:catchup for events already on their way.
 *
 * 200 members over 2 workers in one room; 4 publishers, 2 on each worker, fire 100 events each at
 * once, 100 more come over HTTP on both workers at once, and meanwhile 10 clients join and leave
 * the room three times each on both workers (presence batches and left events). Every member must
 * receive every seq of that stretch live, each exactly once and in increasing order. Standalone only: on a Redis
 * Cluster the workers broadcast (a room's shard channel lives in another slot than its keys), and
 * delivery.test.ts checks completeness there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SEQUENCED_EVENTS } from '@tether/protocol';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorkers, type Worker } from '../helpers/workers.ts';
import { closeAll, connect, createRoomHttp, ok, publishHttp, until, type TestSocket } from '../helpers/clients.ts';

const SEQUENCED = new Set<string>(SEQUENCED_EVENTS);

const MEMBERS = 200;
const PUBLISHERS = 4;
const EACH = 100;
const CHURNERS = 10;
/**
 * Budgets out of the way; Socket.IO's ping windows instead of the suite's 1 s ones: 200 members in
 * one test process receiving 120k events, beside another test file on 2 cores, can stall the
 * process's event loop past 2 s, and a member dropped for a missed pong is not what this checks.
 */
const ENV = {
  PUBLISH_RATE_PER_SEC: '100000', PUBLISH_BURST: '100000', ROOM_PUBLISH_RATE_PER_SEC: '100000', ROOM_PUBLISH_BURST: '100000',
  RECONNECT_FLUSH_MS: '100', WS_PING_INTERVAL: '25000', WS_PING_TIMEOUT: '20000',
};

let redis: TestRedis;
let workers: Worker[] = [];

before(async () => {
  redis = await startRedis({ topology: 'standalone' });
  workers = await startWorkers(2, { redisUrl: redis.url, prefix: redis.prefix, env: ENV });
});
after(async () => {
  closeAll();
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await redis?.stop();
});

test('every member receives the sequenced events of both workers live, once each, in seq order', { timeout: 120_000 }, async () => {
  const [a, b] = workers as [Worker, Worker];
  const room = await createRoomHttp(a.url, { maxParticipants: MEMBERS + PUBLISHERS + CHURNERS });
  let recording = false;
  const members: { worker: number; seqs: number[]; socket: TestSocket; gone?: string }[] = [];
  const publishers: TestSocket[] = [];
  for (let i = 0; i < MEMBERS + PUBLISHERS; i++) {
    const worker = i % 2;
    const { socket } = await connect(workers[worker]!.url);
    await ok(socket, 'room:join', { roomCode: room.code, guestName: `m${i}` });
    if (i < MEMBERS) {
      const m = { worker, seqs: [] as number[], socket };
      socket.onAny((name: string, p: { roomId?: string; seq?: number }) => {
        if (recording && SEQUENCED.has(name) && p?.roomId === room.id && typeof p.seq === 'number') m.seqs.push(p.seq);
      });
      socket.on('disconnect', (reason) => ((m as { gone?: string }).gone = `${reason} after seq ${m.seqs.at(-1)}`));
      members.push(m);
    } else publishers.push(socket);
  }
  assert.equal(new Set(members.map((m) => m.worker)).size, 2, 'members on both workers');
  // The joins' presence batches have gone out (RECONNECT_FLUSH_MS 100) before recording starts.
  await sleep(1000);
  recording = true;

  const acked: number[] = [];
  // Members come and go on both workers meanwhile: presence batches and left events interleave
  // with the app events.
  const churn = Promise.all(
    Array.from({ length: CHURNERS }, async (_, i) => {
      for (let round = 0; round < 3; round++) {
        const { socket } = await connect(workers[i % 2]!.url);
        await ok(socket, 'room:join', { roomCode: room.code, guestName: `c${i}` });
        await ok(socket, 'room:leave', { roomId: room.id });
        socket.close();
      }
    }),
  );
  // Socket publishers, every emit at once (not awaiting acks): appends interleave across workers.
  const sockets = Promise.all(
    publishers.flatMap((socket, p) =>
      Array.from({ length: EACH }, (_, i) =>
        ok(socket, 'room:publish', { roomId: room.id, type: 'burst', data: { p, i }, clientMsgId: `s${p}-${i}` }).then((r) => acked.push(r.seq)),
      ),
    ),
  );
  // HTTP publishers on both workers at once.
  const http = Promise.all(
    [a, b].flatMap((w, p) =>
      Array.from({ length: EACH / 2 }, async (_, i) => {
        const res = await publishHttp(w.url, room.id, { type: 'http', data: { p, i }, idempotencyKey: `h${p}-${i}` });
        assert.equal(res.status, 201, await res.clone().text());
        acked.push(((await res.json()) as { seq: number }).seq);
      }),
    ),
  );
  await Promise.all([churn, sockets, http]);
  const published = PUBLISHERS * EACH + EACH;
  assert.equal(new Set(acked).size, published, 'every publish acknowledged with its own seq');

  // The room's head once everything settled (the last presence batch included: read until it stays).
  let head = -1;
  for (let settled = 0; settled < 3; ) {
    await sleep(500);
    const now = (await ok(publishers[0]!, 'room:catchup', { roomId: room.id, fromSeq: Math.max(...acked) })).seq;
    settled = now === head ? settled + 1 : 0;
    head = now;
  }
  await until(() => members.every((m) => (m.seqs.at(-1) ?? 0) >= head), 30_000, 'every member reaches the head').catch((err: Error) => {
    const behind = members.filter((m) => (m.seqs.at(-1) ?? 0) < head);
    const logs = workers.map((w, i) => `worker ${i}:\n${w.output.slice(-20).join('\n')}`).join('\n');
    throw new Error(`${err.message}: ${behind.length} members behind head ${head} (${behind.filter((m) => !m.socket.connected).length} disconnected), e.g. worker ${behind[0]?.worker} at ${behind[0]?.seqs.at(-1)} with ${behind[0]?.seqs.length} events, disconnected: ${[...new Set(behind.map((m) => m.gone))].join('; ')}\n${logs}`);
  });
  const first = members[0]!.seqs[0]!;
  const expected = Array.from({ length: head - first + 1 }, (_, i) => first + i);
  assert.ok(expected.length >= published + CHURNERS * 3, `app events and every leave sequenced (${expected.length})`);
  for (const x of acked) assert.ok(x >= first, 'every acknowledged publish is in the recorded range');
  let reordered = 0;
  for (const m of members) {
    for (let i = 1; i < m.seqs.length; i++) if (m.seqs[i]! <= m.seqs[i - 1]!) reordered++;
  }
  assert.equal(reordered, 0, `${reordered} events arrived after a later seq (members on worker 0 and 1 alike)`);
  for (const m of members) assert.deepEqual(m.seqs, expected, `worker ${m.worker} member: every seq from ${first} to ${head}, once, in order`);
});

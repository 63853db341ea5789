/**
 * Issue #7 against real processes: the shipped nginx template in front of 3 real workers.
 * Websocket and polling-only clients work through it, a polling session stays on one worker,
 * clients of a SIGKILLed worker come back through nginx and rejoin, and a SIGTERM drain moves a
 * worker's clients to the others in batches without anyone losing their room.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../src/redis/keys.ts';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { io } from 'socket.io-client';
import { startRedis, redisClient, type TestRedis } from '../helpers/redis.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { NGINX, startNginx, type Nginx } from '../helpers/nginx.ts';
import { closeAll, createRoomHttp, ok, record, trackSocket, until, type TestSocket } from '../helpers/clients.ts';
import type { SessionPayload } from '@tether/protocol';

let redis: TestRedis;
let workers: Worker[] = [];
let nginx: Nginx | undefined;
// Pings every 5 s: sixty clients through nginx on a loaded 2-core machine must not time out while
// joining; nothing here relies on a ping noticing a dead peer (drains close, kills reset).
const DRAIN = { DRAIN_BATCH_SIZE: '8', DRAIN_INTERVAL_MS: '150', DRAIN_RECONNECT_JITTER_MS: '0', GRACE_PERIOD_MS: '20000', WS_PING_INTERVAL: '5000', WS_PING_TIMEOUT: '5000' };

before(async () => {
  if (!NGINX) return;
  redis = await startRedis();
  workers = await Promise.all([0, 1, 2].map((i) => startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: `n${i}`, env: DRAIN })));
  nginx = await startNginx(workers.map((w) => w.port));
});
after(async () => {
  closeAll();
  await nginx?.stop();
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  await redis?.stop();
});

interface Client {
  socket: TestSocket;
  clientId: string;
  roomId: string;
  events: ReturnType<typeof record>;
  sessions: SessionPayload[];
}

/** A client through nginx that keeps its identity and room across reconnects (auto-rejoin). */
async function client(roomId: string, transports: ('websocket' | 'polling')[] = ['websocket']): Promise<Client> {
  const clientId = randomUUID();
  const socket: TestSocket = trackSocket(io(`${nginx!.url}/sync`, {
    transports,
    query: { clientId }, // nginx hashes on it: a client keeps its worker, clients spread over workers
    auth: { clientId },
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
    forceNew: true,
  }));
  const c: Client = { socket, clientId, roomId, events: record(socket), sessions: [] };
  socket.on('session', (s) => {
    c.sessions.push(s);
    if (s.sessionToken) socket.auth = { clientId, sessionToken: s.sessionToken, roomId };
  });
  await until(() => c.sessions.length === 1, 5000, 'session through nginx');
  await ok(socket, 'room:join', { roomCode: roomId, guestName: clientId.slice(0, 6) });
  return c;
}

async function status(c: Client): Promise<string | undefined> {
  const r = await redisClient(redis.url);
  try {
    const raw = await r.hGet(new Keys(redis.prefix).room(c.roomId).members, c.clientId);
    return raw ? (JSON.parse(raw) as { status: string }).status : undefined;
  } finally {
    await r.quit();
  }
}

describe('behind a real nginx', { skip: NGINX ? false : 'nginx not installed: apt-get install nginx' }, () => {
  test('websocket and polling-only clients work; a polling session stays on one worker', async () => {
    const room = await createRoomHttp(nginx!.url);
    const ws = await client(room.code, ['websocket']);
    const poll = await client(room.code, ['polling']);
    await ok(ws.socket, 'room:publish', { type: 'ping', data: 1, clientMsgId: 'a' });
    await until(() => poll.events.some((e) => e.name === 'room:event'), 5000, 'polling client receives a broadcast');
    // Several seconds of long-polling round trips: any request landing on another worker would
    // fail with "Session ID unknown" and force a reconnect, i.e. a second session event.
    for (let i = 0; i < 5; i++) {
      await ok(poll.socket, 'room:publish', { type: 'n', data: i, clientMsgId: `p${i}` });
      await sleep(300);
    }
    assert.equal(poll.sessions.length, 1, 'no reconnect: every polling request reached the same worker');
    assert.equal(poll.socket.io.engine.transport.name, 'polling');
    const spread = new Set((await Promise.all(Array.from({ length: 12 }, () => client(room.code)))).map((c) => c.sessions[0]!.nodeId));
    assert.ok(spread.size >= 2, `clients spread over workers by clientId (got ${[...spread]})`);
  });

  test('a SIGKILLed worker: its clients reconnect through nginx to the others and rejoin', async () => {
    const room = await createRoomHttp(nginx!.url);
    const clients = await Promise.all(Array.from({ length: 18 }, () => client(room.code)));
    const victimNode = clients[0]!.sessions[0]!.nodeId;
    const victim = workers.find((w) => w.nodeId === victimNode)!;
    const affected = clients.filter((c) => c.sessions[0]!.nodeId === victimNode);
    await victim.kill('SIGKILL');
    await until(() => affected.every((c) => c.events.some((e) => e.name === 'room:rejoined')), 20_000, 'affected clients rejoined');
    for (const c of affected) {
      assert.notEqual(c.sessions.at(-1)!.nodeId, victimNode);
      assert.equal(await status(c), 'online');
    }
    workers = workers.filter((w) => w !== victim);
    workers.push(await startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: `${victimNode}-back`, port: victim.port, env: DRAIN }));
  });

  test('SIGTERM drains a worker in batches; nobody loses their room', async () => {
    const room = await createRoomHttp(nginx!.url);
    const clients = await Promise.all(Array.from({ length: 60 }, () => client(room.code)));
    const counts = new Map<string, Client[]>();
    for (const c of clients) counts.set(c.sessions[0]!.nodeId, [...(counts.get(c.sessions[0]!.nodeId) ?? []), c]);
    const [drainedNode, affected] = [...counts.entries()].sort((x, y) => y[1].length - x[1].length)[0]!;
    const drained = workers.find((w) => w.nodeId === drainedNode)!;
    const closedAt = new Map<Client, number>();
    for (const c of affected) c.socket.once('disconnect', () => closedAt.set(c, Date.now()));

    const exit = await drained.kill('SIGTERM');
    assert.equal(exit, 0, 'clean exit before SHUTDOWN_TIMEOUT_MS');
    await until(() => affected.every((c) => c.events.some((e) => e.name === 'room:rejoined')), 20_000, 'drained clients rejoined elsewhere');
    for (const c of affected) {
      assert.ok(c.events.some((e) => e.name === 'server:shutdown'), 'told server:shutdown first');
      assert.notEqual(c.sessions.at(-1)!.nodeId, drainedNode);
      assert.equal(await status(c), 'online');
    }
    // Batches: with DRAIN_BATCH_SIZE=8 the closes form several waves separated by the interval.
    const times = [...closedAt.values()].sort((x, y) => x - y);
    let waves = 1;
    for (let i = 1; i < times.length; i++) if (times[i]! - times[i - 1]! >= 75) waves++;
    console.log(`drain: ${affected.length} clients closed in ${waves} waves over ${times.at(-1)! - times[0]!} ms`);
    assert.ok(waves >= Math.min(3, Math.ceil(affected.length / 8)), `closed in waves, not at once (${waves})`);
    workers = workers.filter((w) => w !== drained);
  });
});

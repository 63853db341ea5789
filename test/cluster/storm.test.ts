/**
 * Issue #11 point 2: a reconnect storm must not cost anybody their seat. 500 clients over two
 * workers, in rooms that span both, lose their transports at the same moment — a clean cut, a
 * network switch (the server still holds the old connections: the takeover path) and a silent
 * black hole — and come back well inside GRACE_PERIOD_MS. Every rejoin must keep its seat, and
 * afterwards Redis itself must agree with itself (members ↔ sessions ↔ node indexes).
 * Twice: against two single workers (each client sticks to its worker), and through `npm start`'s
 * own front (reconnects land on whichever worker is least loaded: cross-worker takeovers).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { io } from 'socket.io-client';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorkers, type Worker } from '../helpers/workers.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { startPrimary, type Primary } from '../helpers/primary.ts';
import { closeAll, createRoomHttp, trackSocket, until, type TestSocket } from '../helpers/clients.ts';
import { checkInvariants } from '../helpers/invariants.ts';
import type { Ack, RejoinResult, SessionPayload } from '@tether/protocol';

const CLIENTS = 500;
const ROOMS = 25;

// A storm that lasts a few seconds must stay far inside the grace period. Pings every 3 s: 500
// clients pinging every second would be most of the load on a 2-core machine; a black hole is
// then noticed after 3 + 3 s on both sides.
const ENV = { GRACE_PERIOD_MS: '30000', WS_PING_INTERVAL: '3000', WS_PING_TIMEOUT: '3000' };

let redis: TestRedis;
let workers: Worker[] = [];
let proxies: Proxy[] = [];
let primary: Primary | undefined;

before(async () => {
  redis = await startRedis();
});
after(async () => {
  closeAll();
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(workers.map((w) => w.kill('SIGKILL')));
  primary?.kill();
  await redis?.stop();
});

interface StormClient {
  socket: TestSocket;
  roomId: string;
  clientId?: string;
  sessionToken?: string;
  sessions: number;
  rejoins: { ok: boolean; code?: string; at: number }[];
  lastSeq: number;
}

function connectStormClient(url: string, roomId: string): StormClient {
  const c: StormClient = { roomId, sessions: 0, rejoins: [], lastSeq: 0, socket: undefined as unknown as TestSocket };
  c.socket = trackSocket(
    io(`${url}/sync`, {
      transports: ['websocket'],
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 800,
      // Called on every (re)connect: the reconnect presents the identity the first connect got.
      auth: (cb) => cb(c.clientId ? { clientId: c.clientId, sessionToken: c.sessionToken } : {}),
    }) as TestSocket,
  );
  c.socket.on('session', (s: SessionPayload) => {
    c.sessions++;
    c.clientId = s.clientId;
    c.sessionToken ??= s.sessionToken;
    if (c.sessions === 1) return;
    // What the SDK does after every reconnect: rejoin its room from the last seq it holds.
    c.socket.emit('room:rejoin', { roomId: c.roomId, lastSeq: c.lastSeq }, (res: Ack<RejoinResult>) => {
      c.rejoins.push(res.ok ? { ok: true, at: Date.now() } : { ok: false, code: res.error.code, at: Date.now() });
      if (res.ok) c.lastSeq = Math.max(c.lastSeq, res.data.seq);
    });
  });
  return c;
}

async function join(c: StormClient, code: string): Promise<void> {
  await until(() => c.sessions >= 1, 20_000, 'first session');
  const res = (await c.socket.timeout(20_000).emitWithAck('room:join', { roomCode: code, guestName: 'storm' })) as Ack<{ seq: number }>;
  if (!res.ok) throw new Error(`join: ${res.error.code}`);
  c.lastSeq = res.data.seq;
}

/**
 * The storm itself. `entry(i)` is client i's address (a proxy the test can cut), `http` a worker or
 * front for HTTP, `prefix` the Redis key prefix, `liveNodes` the NODE_IDs that may hold sockets.
 */
async function storm(opts: { entry: (i: number) => string; http: string; prefix: string; liveNodes: string[]; alive: () => void }): Promise<void> {
  {
    const rooms = await Promise.all(Array.from({ length: ROOMS }, () => createRoomHttp(opts.http, { maxParticipants: 100 })));
    // Client i is in room i % ROOMS; with two entries, on worker ⌊i / ROOMS⌋ % 2: every room has members on both workers.
    const clients = Array.from({ length: CLIENTS }, (_, i) => connectStormClient(opts.entry(i), rooms[i % ROOMS]!.code));
    for (let i = 0; i < CLIENTS; i += 50) await Promise.all(clients.slice(i, i + 50).map((c, j) => join(c, rooms[(i + j) % ROOMS]!.code)));

    const waves: { kind: 'cut' | 'switch' | 'blackhole' }[] = [{ kind: 'cut' }, { kind: 'switch' }, { kind: 'blackhole' }];
    for (const [w, wave] of waves.entries()) {
      const before = clients.map((c) => c.sessions);
      if (wave.kind === 'cut') {
        // Connections reset under everybody at once: both sides see the close at once.
        for (const p of proxies) p.cut();
      } else if (wave.kind === 'switch') {
        // Everybody changes network at once: the old connections go silent (the server still
        // holds them as connected) and every client reconnects over a new one right away — the
        // takeover path, with the old socket's disconnect still to come.
        for (const p of proxies) p.freezeExisting();
        for (const c of clients) c.socket.io.engine.close();
      } else {
        // A silent network: nothing moves and nothing closes until ping timeouts notice on both
        // sides (3 s + 3 s), then it comes back.
        for (const p of proxies) p.freeze();
        await sleep(7000);
        for (const p of proxies) p.thaw();
      }
      await until(() => clients.every((c, i) => c.sessions > before[i]! && c.rejoins.length >= c.sessions - 1), 60_000, `wave ${w + 1}: every client reconnected and rejoined`);
      // (After a switch the old connections stay frozen: the server closes those sockets as replaced.)
      const refused = clients.filter((c) => c.rejoins.some((r) => !r.ok));
      assert.deepEqual(
        refused.map((c) => `${c.clientId}: ${c.rejoins.filter((r) => !r.ok).map((r) => r.code).join(',')}`),
        [],
        `wave ${w + 1} (${wave.kind}): refused rejoins`,
      );
    }

    // Old sockets' disconnects, presence flushes and takeover closes settle, then Redis must agree with itself.
    await sleep(4000);
    const report = await checkInvariants({
      url: redis.url,
      prefix: opts.prefix,
      rooms: rooms.map((r) => r.code),
      clientIds: clients.map((c) => c.clientId!),
      liveNodes: opts.liveNodes,
    });
    assert.deepEqual(report.violations, []);
    assert.equal(report.members, CLIENTS, 'nobody lost a seat');
    assert.equal(report.online, CLIENTS, 'everybody is online again');
    opts.alive();
    closeAll();
  }
}

describe('reconnect storm', () => {
  test('500 clients over 2 single workers, three waves of simultaneous drops: every rejoin keeps its seat', { timeout: 240_000 }, async () => {
    workers = await startWorkers(2, { redisUrl: redis.url, prefix: redis.prefix, env: ENV });
    proxies = await Promise.all(workers.map((w) => startProxy(w.port)));
    await storm({
      entry: (i) => proxies[Math.floor(i / ROOMS) % 2]!.url,
      http: workers[0]!.url,
      prefix: redis.prefix,
      liveNodes: workers.map((w) => w.nodeId),
      alive: () => {
        for (const w of workers) assert.equal(w.process.exitCode, null, `worker ${w.nodeId} alive`);
      },
    });
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    proxies = [];
    workers = [];
  });

  test('the same storm through npm start\'s own front: every rejoin keeps its seat', { timeout: 240_000 }, async () => {
    const prefix = `${redis.prefix}f`;
    primary = await startPrimary({ workers: 2, env: { ...ENV, ...redis.env, KEY_PREFIX: prefix, NODE_ID: 'front' } });
    const port = Number(new URL(primary.url).port);
    proxies = [await startProxy(port)];
    await storm({
      entry: () => proxies[0]!.url,
      http: primary.url,
      prefix,
      liveNodes: ['front-w0', 'front-w1'],
      alive: () => assert.equal(primary!.process.exitCode, null, 'the primary is alive'),
    });
    const restarts = (primary.output().match(/exited .*restarting/g) ?? []).length;
    assert.equal(restarts, 0, 'no worker died');
  });
});

/**
 * Issue #16: lifecycle webhooks against a real HTTP receiver, real workers and Redis. Signed the
 * Standard Webhooks way (verified here with the reference library), delivered at least once under
 * a stable webhook-id, retried with backoff, dead-lettered, carried through a SIGKILLed worker, and
 * never sent for a blip.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { startRedis, redisClient, type TestRedis } from '../helpers/redis.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { startProxy } from '../helpers/proxy.ts';
import { closeAll, connect, createRoomHttp, ok, signJwt, until } from '../helpers/clients.ts';
import { Keys } from '../../src/redis/keys.ts';

const SECRET = `whsec_${Buffer.from('tether-webhook-test-secret-32-bytes!!').toString('base64')}`;

interface Delivery {
  id: string;
  type: string;
  data: any;
  attempt: number;
  verified: boolean;
}

/** A receiver: records verified deliveries; `plan(id, attempt)` decides the answer of each attempt. */
async function receiver(plan: (d: Delivery) => number | Promise<number> = () => 200) {
  const wh = new Webhook(SECRET);
  const deliveries: Delivery[] = [];
  const attempts = new Map<string, number>();
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', async () => {
      const id = String(req.headers['webhook-id']);
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      let verified = false;
      try {
        wh.verify(body, req.headers as Record<string, string>);
        verified = true;
      } catch {
        verified = false;
      }
      const parsed = JSON.parse(body) as { type: string; data: unknown };
      const d: Delivery = { id, type: parsed.type, data: parsed.data, attempt, verified };
      deliveries.push(d);
      const status = await plan(d);
      if (!res.destroyed) res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hooks`;
  return {
    url,
    deliveries,
    ofType: (type: string) => deliveries.filter((d) => d.type === type),
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

const cleanups: (() => Promise<unknown>)[] = [];
let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  closeAll();
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await redis?.stop();
});

async function worker(env: Record<string, string>, prefix = redis.prefix): Promise<Worker> {
  const w = await startWorker({ redisUrl: redis.url, prefix, env: { WEBHOOK_SECRET: SECRET, WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_SWEEP_MS: '500', ...env } });
  cleanups.push(() => w.kill('SIGKILL'));
  return w;
}

describe('lifecycle webhooks', () => {
  test('created, joined, online, left, vacated, offline: signed, stable ids, and nothing for a blip', { timeout: 60_000 }, async () => {
    const rx = await receiver();
    cleanups.push(rx.close);
    const prefix = `${redis.prefix}a`;
    const env = { WEBHOOK_URLS: rx.url, GRACE_PERIOD_MS: '2000', USER_OFFLINE_GRACE_MS: '2000' };
    const w = await worker(env, prefix);
    const proxy = await startProxy(w.port);
    cleanups.push(() => proxy.close());
    const room = await createRoomHttp(w.url);
    await until(() => rx.ofType('room.created').length === 1, 5000, 'room.created');
    assert.equal(rx.ofType('room.created')[0]!.data.roomId, room.code);

    const token = await signJwt({ sub: 'hook-user', name: 'Hook' });
    const staying = await connect(w.url);
    await ok(staying.socket, 'room:join', { roomCode: room.code, guestName: 'stays' });
    const blippy = await connect(proxy.url, { auth: { token } });
    await ok(blippy.socket, 'room:join', { roomCode: room.code });
    await until(() => rx.ofType('member.joined').length === 2 && rx.ofType('user.online').length === 1, 5000, 'joins and online');
    assert.equal(rx.ofType('user.online')[0]!.data.userId, 'hook-user');

    // A blip: the connection resets and comes back well inside both grace periods.
    proxy.cut();
    const back = await connect(w.url, { auth: { token, clientId: blippy.session.clientId, sessionToken: blippy.session.sessionToken } });
    await ok(back.socket, 'room:rejoin', { roomId: room.code });
    await sleep(3500); // past both grace periods
    assert.deepEqual(rx.ofType('member.left'), [], 'a blip sends no member.left');
    assert.deepEqual(rx.ofType('user.offline'), [], 'a blip sends no user.offline');
    assert.equal(rx.ofType('user.online').length, 1, 'and no second user.online');
    assert.equal(rx.ofType('member.joined').length, 2, 'and no second member.joined');

    // Gone for good: evicted after the grace period, offline after its own grace.
    back.socket.io.engine.close();
    back.socket.io.reconnection(false);
    await until(() => rx.ofType('member.left').length === 1, 8000, 'member.left after the grace period');
    assert.equal(rx.ofType('member.left')[0]!.data.reason, 'evicted');
    await until(() => rx.ofType('user.offline').length === 1, 8000, 'user.offline');
    // The last member leaves deliberately: left, then vacated.
    await ok(staying.socket, 'room:leave', {});
    await until(() => rx.ofType('room.vacated').length === 1, 5000, 'room.vacated');
    assert.equal(rx.ofType('member.left')[1]!.data.reason, 'left');

    for (const d of rx.deliveries) assert.ok(d.verified, `${d.type} ${d.id} verifies (Standard Webhooks)`);
    const ids = rx.deliveries.map((d) => d.id);
    assert.equal(new Set(ids).size, ids.length, 'one delivery per change: no duplicates here');
    for (const id of ids) assert.match(id, /^msg_[A-Za-z0-9_-]+$/);
  });

  test('a receiver that fails twice gets the same webhook-id three times; out of attempts it is dead-lettered', { timeout: 60_000 }, async () => {
    const flaky = await receiver((d) => (d.type === 'room.created' && d.attempt <= 2 ? 500 : 200));
    cleanups.push(flaky.close);
    const prefix = `${redis.prefix}b`;
    const w = await worker({ WEBHOOK_URLS: flaky.url, WEBHOOK_EVENTS: 'room.created', WEBHOOK_MAX_ATTEMPTS: '5' }, prefix);
    const room = await createRoomHttp(w.url);
    await until(() => flaky.ofType('room.created').some((d) => d.attempt === 3), 10_000, 'third attempt');
    const attempts = flaky.ofType('room.created');
    assert.deepEqual(attempts.map((d) => d.attempt), [1, 2, 3]);
    assert.equal(new Set(attempts.map((d) => d.id)).size, 1, 'stable webhook-id across retries');
    assert.equal(attempts[0]!.data.roomId, room.code);
    await w.kill('SIGKILL');

    const dead = await receiver(() => 503);
    cleanups.push(dead.close);
    const prefixC = `${redis.prefix}c`;
    const w2 = await worker({ WEBHOOK_URLS: dead.url, WEBHOOK_EVENTS: 'room.created', WEBHOOK_MAX_ATTEMPTS: '3' }, prefixC);
    await createRoomHttp(w2.url);
    await until(() => dead.deliveries.length === 3, 10_000, 'three attempts');
    const r = await redisClient(redis.url);
    try {
      await until(async () => (await r.lLen(new Keys(prefixC).webhookDeadLetters())) === 1, 5000, 'dead letter');
      const letter = JSON.parse((await r.lIndex(new Keys(prefixC).webhookDeadLetters(), 0))!) as { id: string; reason: string };
      assert.equal(letter.id, dead.deliveries[0]!.id);
      assert.match(letter.reason, /503/);
    } finally {
      await r.quit();
    }
    const scrape = await (await fetch(`${w2.url}/metrics`)).text();
    assert.match(scrape, /tether_webhook_deliveries_total\{result="dead"\} 1/);
    await sleep(1000);
    assert.equal(dead.deliveries.length, 3, 'no attempt after the last');
  });

  test('a worker SIGKILLed while delivering: another worker delivers the same webhook-id', { timeout: 60_000 }, async () => {
    let hold = true;
    const slow = await receiver(async (d) => {
      if (hold && d.attempt === 1) await sleep(30_000); // the first attempt hangs: its worker dies meanwhile
      return 200;
    });
    cleanups.push(slow.close);
    const prefix = `${redis.prefix}d`;
    const env = { WEBHOOK_URLS: slow.url, WEBHOOK_EVENTS: 'room.created', WEBHOOK_TIMEOUT_MS: '20000' };
    const a = await worker(env, prefix);
    await createRoomHttp(a.url);
    await until(() => slow.deliveries.length === 1, 5000, 'first attempt in flight');
    await a.kill('SIGKILL');
    hold = false;
    const b = await worker({ ...env, WEBHOOK_TIMEOUT_MS: '1000' }, prefix);
    void b;
    // The job's lock (2 × timeout + 1 s of the dead worker) expires; the stalled job runs again.
    await until(() => slow.deliveries.length >= 2, 60_000, 'delivered again by the surviving worker');
    assert.equal(slow.deliveries[1]!.id, slow.deliveries[0]!.id, 'same webhook-id: the receiver deduplicates');
  });

  test('an outbox a worker died before relaying is found by the sweeper', { timeout: 30_000 }, async () => {
    const rx = await receiver();
    cleanups.push(rx.close);
    const prefix = `${redis.prefix}e`;
    const w = await worker({ WEBHOOK_URLS: rx.url }, prefix);
    // What a worker leaves behind when it dies between a Lua step and its relay: an entry in an
    // outbox nobody indexed.
    const r = await redisClient(redis.url);
    try {
      await r.rPush(new Keys(prefix).room('ORPHAN12').hooks, JSON.stringify({ id: 'msg_ORPHAN12_x_7', type: 'member.left', ts: Date.now(), data: { roomId: 'ORPHAN12', reason: 'evicted' } }));
    } finally {
      await r.quit();
    }
    void w;
    await until(() => rx.deliveries.some((d) => d.id === 'msg_ORPHAN12_x_7'), 15_000, 'orphaned entry delivered by the sweeper');
  });
});

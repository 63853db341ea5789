/**
 * Issue #4 (user inbox): direct messages to users against real workers and Redis. Store first,
 * deliver live to every device of the user on every worker, redeliver pending messages on every
 * connect until a device acknowledges them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../src/redis/keys.ts';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis, redisClient, type TestRedis } from '../helpers/redis.ts';
import { SERVICE_TOKEN, startWorker, startWorkers, type Worker } from '../helpers/workers.ts';
import { closeAll, connect, ok, record, request, signJwt, until, type TestSocket } from '../helpers/clients.ts';

let redis: TestRedis;
let a: Worker;
let b: Worker;
const extra: Worker[] = [];

before(async () => {
  redis = await startRedis();
  [a, b] = await startWorkers(2, { redisUrl: redis.url, prefix: redis.prefix });
});
after(async () => {
  closeAll();
  await Promise.all([a?.kill('SIGKILL'), b?.kill('SIGKILL'), ...extra.map((w) => w.kill('SIGKILL'))]);
  await redis?.stop();
});

const uid = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

async function sendHttp(url: string, userId: string, body: Record<string, unknown>, token: string | null = SERVICE_TOKEN): Promise<Response> {
  return fetch(`${url}/v1/users/${encodeURIComponent(userId)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
}

async function sendOk(url: string, userId: string, body: Record<string, unknown>): Promise<string> {
  const res = await sendHttp(url, userId, body);
  assert.equal(res.status, 201, await res.clone().text());
  const json = (await res.json()) as { id: string };
  assert.equal(typeof json.id, 'string');
  return json.id;
}

/** A device of `userId`: connects with a JWT and records everything from the first packet. */
async function device(url: string, userId: string, auth: Record<string, unknown> = {}) {
  const token = await signJwt({ sub: userId, name: userId });
  const c = await connect(url, { auth: { token, ...auth } });
  const seen = record(c.socket);
  return { ...c, seen, inbox: () => seen.filter((e) => e.name === 'inbox:message').map((e) => e.payload as { id: string; from: string; type: string; data: unknown; ts: number }) };
}

/**
 * A marker queued before a connect is the newest pending message, and pending messages go out
 * oldest first in one pass: once it is in, the pending delivery of that connect is complete.
 * (A message sent after the connect is no such proof: it can overtake the pending pass live.)
 */
async function connectAfterMarker(url: string, userId: string, auth: Record<string, unknown> = {}) {
  const markerId = await sendOk(url, userId, { type: 'test.marker', data: null });
  const d = await device(url, userId, auth);
  await until(() => d.inbox().some((m) => m.id === markerId), 5000, 'marker message');
  return { ...d, markerId };
}

async function connections(userId: string): Promise<number> {
  const r = await redisClient(redis.url);
  try {
    return await r.hLen(new Keys(redis.prefix).userConnections(userId));
  } finally {
    await r.quit();
  }
}

function close(socket: TestSocket) {
  socket.close();
}

describe('inbox', () => {
  test('an offline user gets queued messages on connect, oldest first, until acknowledged; then never again', async () => {
    const user = uid('offline');
    const sent: string[] = [];
    for (let i = 0; i < 3; i++) sent.push(await sendOk(i % 2 ? a.url : b.url, user, { type: 'dm.text', data: { n: i } }));
    assert.equal(new Set(sent).size, 3, 'ids are unique');

    // First connect (worker a): pending messages in order, with their payloads.
    const d1 = await device(a.url, user);
    await until(() => d1.inbox().length >= 3, 5000, 'three pending messages');
    const first = d1.inbox();
    assert.deepEqual(first.slice(0, 3).map((m) => m.id), sent, 'oldest first');
    assert.deepEqual(first.slice(0, 3).map((m) => m.data), [{ n: 0 }, { n: 1 }, { n: 2 }]);
    assert.ok(first.every((m) => m.from === 'service:backend' && m.type === 'dm.text' && typeof m.ts === 'number'));
    close(d1.socket);

    // Reconnect without ack (same device, other worker): the same ids again.
    const d2 = await connectAfterMarker(b.url, user, { clientId: d1.session.clientId, sessionToken: d1.session.sessionToken });
    const m1 = d2.markerId;
    assert.deepEqual(d2.inbox().map((m) => m.id), [...sent, m1], 'unacknowledged messages are redelivered once, with the same ids');

    // Ack: only what was there counts; a repeated ack removes nothing.
    assert.deepEqual(await ok(d2.socket, 'inbox:ack', { ids: [...sent, m1] }), { removed: 4 });
    assert.deepEqual(await ok(d2.socket, 'inbox:ack', { ids: [...sent, 'not-an-id'] }), { removed: 0 });
    close(d2.socket);

    // Reconnect after ack: nothing acknowledged comes back.
    const d3 = await connectAfterMarker(a.url, user, { clientId: d1.session.clientId, sessionToken: d1.session.sessionToken });
    const m2 = d3.markerId;
    assert.deepEqual(d3.inbox().map((m) => m.id), [m2], 'nothing acknowledged comes back');
    await ok(d3.socket, 'inbox:ack', { ids: [m2] });
    close(d3.socket);
  });

  test('live delivery reaches every device of the user on every worker; delivered tracks connections', async () => {
    const user = uid('multi');
    const sender = uid('sender');
    const phone = await device(a.url, user);
    const laptop = await device(b.url, user);
    const from = await device(b.url, sender);
    await until(async () => (await connections(user)) === 2, 5000, 'both devices recorded');

    const res = await ok(from.socket, 'user:message', { toUserId: user, type: 'dm.text', data: { hi: 1 } });
    assert.equal(res.delivered, true);
    const viaHttp = await sendOk(a.url, user, { type: 'dm.notice', data: 'x' });
    for (const d of [phone, laptop]) {
      await until(() => d.inbox().some((m) => m.id === res.id) && d.inbox().some((m) => m.id === viaHttp), 5000, 'live delivery');
      const got = d.inbox().find((m) => m.id === res.id)!;
      assert.equal(got.from, sender, 'from is the sender userId');
      assert.deepEqual(got.data, { hi: 1 });
      assert.equal(d.inbox().filter((m) => m.id === res.id).length, 1, 'live message once per device');
    }
    assert.ok(!from.inbox().some((m) => m.id === res.id), 'the sender does not get it');

    // One device acks: the message is gone for the user (the other device already had it live).
    assert.deepEqual(await ok(phone.socket, 'inbox:ack', { ids: [res.id, viaHttp] }), { removed: 2 });
    assert.deepEqual(await ok(laptop.socket, 'inbox:ack', { ids: [res.id, viaHttp] }), { removed: 0 });

    // A resend with the same clientMsgId (unacknowledged original) returns the original id.
    const once = await ok(from.socket, 'user:message', { toUserId: user, type: 'dm.text', data: 1, clientMsgId: 'm-1' });
    const again = await ok(from.socket, 'user:message', { toUserId: user, type: 'dm.text', data: 1, clientMsgId: 'm-1' });
    assert.equal(again.id, once.id, 'resend is deduplicated');
    const probe = await ok(from.socket, 'user:message', { toUserId: user, type: 'dm.text', data: 'probe' });
    await until(() => phone.inbox().some((m) => m.id === probe.id), 5000, 'probe');
    assert.equal(phone.inbox().filter((m) => m.id === once.id).length, 1, 'resend not emitted again');

    // All devices gone: delivered false, but the message is kept for the next connect.
    close(phone.socket);
    close(laptop.socket);
    await until(async () => (await connections(user)) === 0, 5000, 'devices removed');
    const offline = await ok(from.socket, 'user:message', { toUserId: user, type: 'dm.text', data: 2 });
    assert.equal(offline.delivered, false);
    const back = await device(a.url, user);
    await until(() => back.inbox().some((m) => m.id === offline.id), 5000, 'queued message on connect');
    assert.equal((await ok(from.socket, 'user:message', { toUserId: user, type: 'dm.text', data: 3 })).delivered, true);
  });

  test('a replaced socket\'s disconnect does not unregister the device that replaced it', async () => {
    const user = uid('takeover');
    const d1 = await device(a.url, user);
    await until(async () => (await connections(user)) === 1, 5000, 'recorded');
    const d2 = await device(b.url, user, { clientId: d1.session.clientId, sessionToken: d1.session.sessionToken });
    await until(() => d1.socket.disconnected, 5000, 'old socket closed after takeover');
    await sleep(200); // let the old socket's disconnect handler run
    assert.equal(await connections(user), 1, 'the new connection is still counted');
    const sender = await device(a.url, uid('s'));
    assert.equal((await ok(sender.socket, 'user:message', { toUserId: user, type: 't', data: null })).delivered, true);
    close(d2.socket);
  });

  test('errors: guests, other users\' inboxes, rate limit, size, HTTP auth and validation', async () => {
    const guest = await connect(a.url);
    for (const [event, payload] of [
      ['user:message', { toUserId: 'x', type: 't', data: 1 }],
      ['inbox:ack', { ids: ['x'] }],
    ] as const) {
      const res = await request(guest.socket, event, payload as never);
      assert.equal(res.ok, false);
      assert.equal(!res.ok && res.error.code, 'UNAUTHORIZED', event);
    }

    // Acks only touch the acker's own inbox.
    const victim = uid('victim');
    const id = await sendOk(a.url, victim, { type: 't', data: 1 });
    const other = await device(b.url, uid('other'));
    assert.deepEqual(await ok(other.socket, 'inbox:ack', { ids: [id] }), { removed: 0 });
    const v = await device(a.url, victim);
    await until(() => v.inbox().some((m) => m.id === id), 5000, 'victim still has it');

    // Size: same cap as room events (MAX_EVENT_DATA_BYTES, 16 KiB by default).
    const big = await request(other.socket, 'user:message', { toUserId: victim, type: 't', data: 'x'.repeat(17 * 1024) });
    assert.equal(!big.ok && big.error.code, 'INVALID_PAYLOAD');
    const bad = await request(other.socket, 'user:message', { toUserId: victim, type: 'bad type!', data: 1 } as never);
    assert.equal(!bad.ok && bad.error.code, 'INVALID_PAYLOAD');

    // Rate limit per socket: a burst beyond the bucket is refused with RATE_LIMITED.
    const spammer = await device(b.url, uid('spammer'));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => request(spammer.socket, 'user:message', { toUserId: victim, type: 't', data: i })));
    const limited = results.filter((r) => !r.ok && r.error.code === 'RATE_LIMITED').length;
    assert.ok(limited > 0, 'some refused');
    assert.ok(results.filter((r) => r.ok).length >= 5, 'the burst itself passes');
    assert.equal(limited + results.filter((r) => r.ok).length, 30, 'only RATE_LIMITED failures');

    // HTTP: service auth required; body validated; a user JWT is not a service.
    assert.equal((await sendHttp(a.url, victim, { type: 't', data: 1 }, null)).status, 403);
    assert.equal((await sendHttp(a.url, victim, { type: 't', data: 1 }, 'wrong-token')).status, 401);
    assert.equal((await sendHttp(a.url, victim, { type: 't', data: 1 }, await signJwt({ sub: 'u' }))).status, 403);
    const badBody = await sendHttp(a.url, victim, { type: 't' , data: 1, extra: true });
    assert.equal(badBody.status, 400);
    assert.equal(((await badBody.json()) as { error: { code: string } }).error.code, 'INVALID_PAYLOAD');
    assert.equal((await sendHttp(a.url, victim, { type: 't', data: 'x'.repeat(17 * 1024) })).status, 400);
    const publisher = await signJwt({ sub: 'billing', role: 'publisher' });
    const res = await sendHttp(b.url, victim, { type: 'invoice', data: { total: 3 } }, publisher);
    assert.equal(res.status, 201);
    const { id: pid } = (await res.json()) as { id: string };
    await until(() => v.inbox().some((m) => m.id === pid && m.from === 'service:billing'), 5000, 'publisher message live');
  });

  test('bounded: the inbox keeps the newest INBOX_MAX_MESSAGES and drops entries older than INBOX_TTL_MS', async () => {
    const prefix = `${redis.prefix}b`;
    const w = await startWorker({ redisUrl: redis.url, prefix, env: { INBOX_MAX_MESSAGES: '5', INBOX_TTL_MS: '1500' } });
    extra.push(w);
    const user = uid('bounded');
    const sent: string[] = [];
    for (let i = 0; i < 8; i++) sent.push(await sendOk(w.url, user, { type: 't', data: i }));
    const r = await redisClient(redis.url);
    try {
      const key = new Keys(prefix).userInbox(user);
      assert.equal(await r.zCard(key), 5);
      const ttl = await r.pTTL(key);
      assert.ok(ttl > 0 && ttl <= 1500, `key TTL ${ttl}`);
      const d = await device(w.url, user);
      await until(() => d.inbox().length >= 5, 5000, 'pending');
      assert.deepEqual(d.inbox().slice(0, 5).map((m) => m.id), sent.slice(3), 'oldest dropped first');
      close(d.socket);

      // Per-entry age: an old entry goes even though a newer push refreshed the key TTL.
      await until(async () => (await r.zCard(key)) === 0 || (await r.exists(key)) === 0, 5000, 'aged out');
      const old = await sendOk(w.url, user, { type: 't', data: 'old' });
      await sleep(1600);
      const fresh = await sendOk(w.url, user, { type: 't', data: 'fresh' });
      const d2 = await connectAfterMarker(w.url, user);
      assert.deepEqual(d2.inbox().map((m) => m.id), [fresh, d2.markerId], 'aged entry not delivered');
      assert.ok(!d2.inbox().some((m) => m.id === old));
    } finally {
      await r.quit();
    }
  });
});

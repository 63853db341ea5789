/**
 * Issue #2 (foundation) against real processes: two `node dist/main.js` workers, one real
 * redis-server, real socket.io-client clients.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../src/redis/keys.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { redisClient, type TestRedis } from '../helpers/redis.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { connect, connectRefused, createRoomHttp, ok, record, request, signJwt, until } from '../helpers/clients.ts';

let cluster: TestCluster | undefined;
let redis: TestRedis;
let a: Worker;
let b: Worker;

before(async () => {
  cluster = await startCluster(2);
  redis = cluster.redis;
  [a, b] = cluster.workers as [Worker, Worker];
});
after(() => cluster?.stop());

describe('rooms across two workers', () => {
  test('a JWT user and a guest on different workers see each other; broadcasts cross workers', async () => {
    const room = await createRoomHttp(a.url, { name: 'Movie night' }, 'alice');
    assert.match(room.code, /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);

    const alice = await connect(a.url, { auth: { token: await signJwt({ sub: 'alice', name: 'Alice' }) } });
    assert.equal(alice.session.userId, 'alice');
    assert.ok(alice.session.sessionToken, 'first connect issues a session token');
    const aliceEvents = record(alice.socket);
    const joined = await ok(alice.socket, 'room:join', { roomCode: room.code });
    assert.equal(joined.self.role, 'host', 'the creating user becomes host when joining');
    assert.equal(joined.participants.length, 1);

    const guest = await connect(b.url);
    assert.equal(guest.session.userId, null);
    const guestEvents = record(guest.socket);
    const gj = await ok(guest.socket, 'room:join', { roomCode: room.code.toLowerCase(), guestName: 'Gus' });
    assert.deepEqual(gj.participants.map((p) => p.name).sort(), ['Alice', 'Gus']);
    assert.ok(guestEvents.some((e) => e.name === 'room:state'), 'joiner receives room:state');

    await until(() => aliceEvents.some((e) => e.name === 'room:participant:joined'), 5000, 'participant:joined on the other worker');
    const announced = aliceEvents.find((e) => e.name === 'room:participant:joined')!.payload;
    assert.equal(announced.participant.name, 'Gus');
    assert.equal(announced.seq, gj.seq);

    const pub = await ok(guest.socket, 'room:publish', { type: 'chat.message', data: { text: 'hi' }, clientMsgId: 'm-1' });
    await until(() => aliceEvents.some((e) => e.name === 'room:event'), 5000, 'room:event on the other worker');
    const ev = aliceEvents.find((e) => e.name === 'room:event')!.payload;
    assert.deepEqual([ev.seq, ev.type, ev.data, ev.from], [pub.seq, 'chat.message', { text: 'hi' }, guest.session.clientId]);

    await ok(guest.socket, 'room:leave', {});
    await until(() => aliceEvents.some((e) => e.name === 'room:participant:left'), 5000, 'participant:left');
    const left = aliceEvents.find((e) => e.name === 'room:participant:left')!.payload;
    assert.equal(left.clientId, guest.session.clientId);
    assert.equal(left.reason, 'left');
  });

  test('concurrent joins for the last seats through two workers never overfill the room', async () => {
    const capacity = 3;
    const room = await createRoomHttp(a.url, { maxParticipants: capacity });
    const clients = await Promise.all(Array.from({ length: 10 }, (_, i) => connect(i % 2 ? a.url : b.url)));
    const results = await Promise.all(clients.map((c, i) => request(c.socket, 'room:join', { roomCode: room.code, guestName: `p${i}` })));
    const admitted = results.filter((r) => r.ok).length;
    const full = results.filter((r) => !r.ok && r.error.code === 'ROOM_FULL').length;
    assert.equal(admitted, capacity);
    assert.equal(full, 10 - capacity);
    const r = await redisClient(redis.url);
    assert.equal(await r.hLen(new Keys(redis.prefix).room(room.code).members), capacity);
    await r.quit();
  });

  test('each documented error code is produced', async () => {
    const room = await createRoomHttp(a.url, { password: 'hunter2', maxParticipants: 1 });

    assert.equal((await connectRefused(a.url, { token: 'not-a-jwt' })).code, 'INVALID_TOKEN');
    assert.equal((await connectRefused(a.url, { token: await signJwt({ sub: 'x' }, { secret: 'another-secret-0123456789' }) })).code, 'INVALID_TOKEN');
    assert.equal((await connectRefused(a.url, { token: await signJwt({ sub: 'x' }, { expiresIn: '-10s' }) })).code, 'INVALID_TOKEN');
    assert.equal((await connectRefused(a.url, { clientId: 'x' })).code, 'INVALID_PAYLOAD');

    const c = await connect(b.url);
    const events = record(c.socket);
    const codeOf = async (ev: Parameters<typeof request>[1], payload: unknown) => {
      const res = await request(c.socket, ev, payload as never);
      assert.equal(res.ok, false, `${ev} should fail`);
      return (res as { error: { code: string } }).error.code;
    };
    assert.equal(await codeOf('room:join', { roomCode: 'ZZZZZZZZ' }), 'ROOM_NOT_FOUND');
    assert.equal(await codeOf('room:join', { roomCode: room.code }), 'INVALID_PASSWORD');
    assert.equal(await codeOf('room:join', { roomCode: room.code, password: 'wrong' }), 'INVALID_PASSWORD');
    assert.equal(await codeOf('room:join', { roomCode: 42 }), 'INVALID_PAYLOAD');
    assert.equal(await codeOf('room:join', { roomCode: room.code, password: 'hunter2', extra: true }), 'INVALID_PAYLOAD');
    assert.equal(await codeOf('room:leave', {}), 'NOT_IN_ROOM');
    assert.equal(await codeOf('room:publish', { type: 'x', data: 1, clientMsgId: 'a' }), 'NOT_IN_ROOM');
    assert.equal(await codeOf('room:create', {}), 'UNAUTHORIZED');
    // A refused request is answered once: on its ack, with no room:error beside it...
    assert.deepEqual(events.filter((e) => e.name === 'room:error'), [], 'acked failures are not mirrored');
    // ...and as room:error when it came without an ack.
    (c.socket.emit as (ev: string, ...a: unknown[]) => void)('room:join', { roomCode: 'ZZZZZZZZ' });
    await until(() => events.some((e) => e.name === 'room:error'), 3000, 'room:error for an ack-less request');
    await sleep(200);
    assert.deepEqual(events.filter((e) => e.name === 'room:error').map((e) => e.payload.code), ['ROOM_NOT_FOUND']);
    assert.equal(await codeOf('no:such:event' as never, {}), 'UNKNOWN_EVENT');

    await ok(c.socket, 'room:join', { roomCode: room.code, password: 'hunter2' });
    const other = await createRoomHttp(a.url);
    assert.equal(await codeOf('room:join', { roomCode: other.code }), 'ALREADY_IN_ROOM');
    const d = await connect(a.url);
    const full = await request(d.socket, 'room:join', { roomCode: room.code, password: 'hunter2' });
    assert.equal(!full.ok && full.error.code, 'ROOM_FULL');

    // A payload that is not even an object, and an event with no ack callback, must not crash anything.
    (c.socket.emit as (ev: string, ...a: unknown[]) => void)('room:publish', 'garbage');
    (c.socket.emit as (ev: string, ...a: unknown[]) => void)('room:join');
    const stillUp = await fetch(`${b.url}/healthz`);
    assert.equal(stillUp.status, 200);

    // Guests refused where guests are not allowed.
    const strict = await startWorker({ redisUrl: redis.url, prefix: redis.prefix, env: { ALLOW_GUESTS: 'false' } });
    try {
      assert.equal((await connectRefused(strict.url, {})).code, 'UNAUTHORIZED');
    } finally {
      await strict.kill('SIGKILL');
    }
  });

  test('HTTP API: auth, public info without the password hash, error bodies', async () => {
    const noAuth = await fetch(`${a.url}/v1/rooms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(noAuth.status, 403);
    assert.equal(((await noAuth.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    const badBody = await fetch(`${a.url}/v1/rooms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await signJwt({ sub: 'u' })}` },
      body: JSON.stringify({ maxParticipants: -1 }),
    });
    assert.equal(badBody.status, 400);
    assert.equal(((await badBody.json()) as { error: { code: string } }).error.code, 'INVALID_PAYLOAD');

    const room = await createRoomHttp(a.url, { name: 'Secret', password: 'pw' });
    const info = (await (await fetch(`${b.url}/v1/rooms/${room.code.toLowerCase()}`)).json()) as Record<string, unknown>;
    assert.equal(info.hasPassword, true);
    assert.equal(info.name, 'Secret');
    assert.ok(!JSON.stringify(info).includes('scrypt'), 'never the password hash');
    const missing = await fetch(`${b.url}/v1/rooms/ZZZZZZZZ`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'ROOM_NOT_FOUND');

    assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${a.url}/readyz`)).status, 200);
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    for (const name of ['tether_connected_clients', 'tether_connections_total', 'tether_disconnections_total', 'tether_rooms_joined_total', 'process_resident_memory_bytes']) {
      assert.ok(metrics.includes(name), `metrics expose ${name}`);
    }
  });

  test('a SIGKILLed worker does not take room state with it', async () => {
    const c = await startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'doomed' });
    const room = await createRoomHttp(a.url);
    const victim = await connect(c.url);
    await ok(victim.socket, 'room:join', { roomCode: room.code, guestName: 'victim' });
    const survivor = await connect(a.url);
    await ok(survivor.socket, 'room:join', { roomCode: room.code, guestName: 'survivor' });
    await ok(survivor.socket, 'room:publish', { type: 'note', data: 'before', clientMsgId: 'n1' });

    await c.kill('SIGKILL');

    const late = await connect(b.url);
    const state = await ok(late.socket, 'room:join', { roomCode: room.code, guestName: 'late' });
    assert.deepEqual(state.participants.map((p) => p.name).sort(), ['late', 'survivor', 'victim']);
    const log = await ok(late.socket, 'room:catchup', { roomId: room.code, fromSeq: 0 });
    assert.ok(log.events.some((e) => e.name === 'room:event' && e.payload.data === 'before'));
  });
});

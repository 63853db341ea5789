/**
 * Issue #12: hostile input never crashes a worker, leaks a room or exhausts the cluster. Two real
 * workers behind nothing (TRUST_PROXY=loopback lets a test client claim an address with
 * X-Forwarded-For, the way nginx would pass it), real Redis, real socket.io-clients.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../src/redis/keys.ts';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { io } from 'socket.io-client';
import { redisClient } from '../helpers/redis.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import type { Worker } from '../helpers/workers.ts';
import { SERVICE_TOKEN } from '../helpers/workers.ts';
import { connect, createRoomHttp, ok, record, request, signJwt, trackSocket, until, type TestSocket } from '../helpers/clients.ts';
import type { SessionPayload } from '@tether/protocol';
import { closeAllRaw, deepJson, rawConnect } from '../helpers/raw.ts';

let cluster: TestCluster;
let a: Worker;
let b: Worker;
let pids: number[];

before(async () => {
  cluster = await startCluster(2, {
    TRUST_PROXY: 'loopback',
    HANDSHAKES_PER_ADDRESS_PER_MIN: '20',
    PASSWORD_ATTEMPTS_PER_CLIENT: '3',
    PASSWORD_ATTEMPTS_PER_ADDRESS: '8',
    PASSWORD_ATTEMPTS_PER_ROOM: '1000',
    PUBLISH_RATE_PER_SEC: '5',
    PUBLISH_BURST: '10',
    SESSION_IDLE_TTL_MS: '60000',
  });
  [a, b] = cluster.workers as [Worker, Worker];
  pids = cluster.workers.map((w) => w.process.pid!);
});
after(async () => {
  closeAllRaw();
  await cluster?.stop();
});

function assertWorkersAlive(): void {
  for (const [i, w] of cluster.workers.entries()) {
    assert.equal(w.process.exitCode, null, `worker ${w.nodeId} exited:\n${w.output.slice(-20).join('\n')}`);
    assert.equal(w.process.pid, pids[i], 'same worker process');
  }
}

/** A client that claims to come from `address` (believed: the worker trusts loopback proxies). */
async function connectFrom(url: string, address: string, auth: Record<string, unknown> = {}): Promise<{ socket: TestSocket; session?: SessionPayload; error?: { code: string; retryAfterMs?: number } }> {
  const socket = trackSocket(io(`${url}/sync`, { transports: ['websocket'], forceNew: true, reconnection: false, auth, extraHeaders: { 'x-forwarded-for': address } }) as TestSocket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no session or connect_error in 10s')), 10_000);
    socket.once('session', (session) => {
      clearTimeout(timer);
      resolve({ socket, session });
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      resolve({ socket, error: (err as Error & { data: { code: string; retryAfterMs?: number } }).data });
    });
  });
}

const SEQUENCED_OR_ROOM = new Set(['room:event', 'room:signal', 'room:participant:joined', 'room:participant:left', 'room:presence', 'room:state', 'room:head']);

describe('hostile input', () => {
  test('a payload nested 10,000 levels deep is INVALID_PAYLOAD on every path, and kills nothing', async () => {
    const room = await createRoomHttp(a.url);
    // Raw frames: socket.io-client's own encoder overflows on such payloads before sending them.
    const raw = await rawConnect(b.url);
    assert.ok((await raw.connected).sid, 'connected');
    const joined = await raw.request('room:join', JSON.stringify({ roomCode: room.code, guestName: 'deep' }));
    assert.match(joined!, /"ok":true/);
    const deep = deepJson(10_000);
    for (const [event, payload] of [
      ['room:publish', `{"type":"x","data":${deep},"clientMsgId":"m1"}`],
      ['room:signal', `{"type":"x","data":${deep}}`],
      ['room:join', deep],
      ['user:message', `{"toUserId":"u","type":"x","data":${deep}}`],
      ['room:catchup', deep],
    ] as const) {
      const ack = await raw.request(event, payload);
      assert.ok(ack, `${event} answered`);
      assert.match(ack, /"code":"INVALID_PAYLOAD"/, event);
    }
    // Without an ack the same frames must not kill anything either (answered as room:error).
    raw.send(`42/sync,["room:publish",{"type":"x","data":${deep},"clientMsgId":"m2"}]`);
    raw.send(`42/sync,["room:signal",{"type":"x","data":${deep}}]`);
    await until(() => raw.frames.filter((f) => f.includes('room:error')).length >= 2, 3000, 'room:error for ack-less frames');
    // Deep handshake auth.
    const refused = await rawConnect(a.url, `{"lastSeq":${deep}}`);
    assert.equal((await refused.connected).error?.data?.code, 'INVALID_PAYLOAD');
    // Deep HTTP bodies.
    const res = await fetch(`${a.url}/v1/rooms/${room.code}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SERVICE_TOKEN}` },
      body: `{"type":"x","data":${deep}}`,
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'INVALID_PAYLOAD');
    // 31 levels of data (32 with the payload object) are fine.
    const fine = await raw.request('room:publish', `{"type":"x","data":${deepJson(31)},"clientMsgId":"m3"}`);
    assert.match(fine!, /"ok":true/);
    raw.close();
    refused.close();
    await sleep(200);
    assertWorkersAlive();
  });

  test('a flood of wrong-password joins receives nothing of the room', async () => {
    const room = await createRoomHttp(a.url, { password: 'correct horse' });
    const member = await connect(a.url);
    await ok(member.socket, 'room:join', { roomCode: room.code, password: 'correct horse', guestName: 'inside' });
    const attacker = await connectFrom(b.url, '10.9.1.1');
    const heard = record(attacker.socket);
    let publishing = true;
    const chatter = (async () => {
      let n = 0;
      while (publishing) {
        await request(member.socket, 'room:publish', { type: 'chat', data: { n }, clientMsgId: `c${n++}` });
        member.socket.emit('room:signal', { type: 'typing', data: n }, () => undefined);
        await sleep(30);
      }
    })();
    const codes = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const res = await request(attacker.socket, 'room:join', { roomCode: room.code, password: `guess-${i}` });
      assert.equal(res.ok, false);
      if (!res.ok) codes.set(res.error.code, (codes.get(res.error.code) ?? 0) + 1);
    }
    publishing = false;
    await chatter;
    await sleep(300);
    assert.deepEqual(heard.filter((e) => SEQUENCED_OR_ROOM.has(e.name)).map((e) => e.name), [], 'the attacker heard nothing of the room');
    // The budget engaged after PASSWORD_ATTEMPTS_PER_CLIENT guesses: the rest never ran a hash.
    assert.equal(codes.get('INVALID_PASSWORD'), 3);
    assert.equal(codes.get('RATE_LIMITED'), 37);
    assertWorkersAlive();
  });

  test('password budgets hold across workers and clientIds; other addresses and the right password are untouched', async () => {
    const room = await createRoomHttp(a.url, { password: 'open sesame' });
    let refusedByBudget = 0;
    let hashed = 0;
    // The attacker spreads over both workers, a fresh clientId per attempt, one address.
    for (let i = 0; i < 12; i++) {
      const { socket } = await connectFrom(i % 2 ? a.url : b.url, '10.9.2.1');
      const res = await request(socket, 'room:join', { roomCode: room.code, password: `nope-${i}` });
      if (!res.ok && res.error.code === 'RATE_LIMITED') {
        refusedByBudget++;
        assert.ok(Number(res.error.retryAfterMs) > 0, 'says when to come back');
      } else hashed++;
      socket.close();
    }
    assert.equal(hashed, 8, 'PASSWORD_ATTEMPTS_PER_ADDRESS guesses from one address, whatever the worker or clientId');
    assert.equal(refusedByBudget, 4);
    // An honest client elsewhere gets in at once, even after a typo.
    const honest = await connectFrom(b.url, '10.9.2.2');
    const typo = await request(honest.socket, 'room:join', { roomCode: room.code, password: 'open sesam' });
    assert.equal(!typo.ok && typo.error.code, 'INVALID_PASSWORD');
    const joined = await request(honest.socket, 'room:join', { roomCode: room.code, password: 'open sesame' });
    assert.equal(joined.ok, true);
  });

  test('new sessions per address are limited across workers; reconnects with a session token are not', async () => {
    const results: string[] = [];
    const sessions: SessionPayload[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await connectFrom(i % 2 ? a.url : b.url, '10.9.3.1');
      results.push(r.session ? 'ok' : r.error!.code);
      if (r.session) sessions.push(r.session);
      r.socket.close();
    }
    assert.equal(results.filter((r) => r === 'ok').length, 20, 'HANDSHAKES_PER_ADDRESS_PER_MIN new sessions');
    assert.equal(results.filter((r) => r === 'RATE_LIMITED').length, 10);
    // The same address reconnecting with its session token still gets in (a deploy's storm).
    const back = await connectFrom(a.url, '10.9.3.1', { clientId: sessions[0]!.clientId, sessionToken: sessions[0]!.sessionToken });
    assert.ok(back.session, 'reconnect with a token is not a new session');
    const other = await connectFrom(a.url, '10.9.3.2');
    assert.ok(other.session, 'another address is untouched');
    // A session that never joined a room keeps only SESSION_IDLE_TTL_MS once disconnected.
    back.socket.close();
    const r = await redisClient(cluster.redis.url);
    try {
      await until(async () => (await r.hGet(new Keys(cluster.redis.prefix).session(sessions[0]!.clientId), 'status')) === 'disconnected', 3000, 'disconnect recorded');
      const ttl = await r.pTTL(new Keys(cluster.redis.prefix).session(sessions[0]!.clientId));
      assert.ok(ttl > 0 && ttl <= 60_000, `idle session TTL ${ttl}`);
    } finally {
      await r.quit();
    }
  });

  test('two joins to two rooms sent back to back: exactly one wins; a deliberate disconnect leaves no ghost', async () => {
    const r1 = await createRoomHttp(a.url);
    const r2 = await createRoomHttp(b.url);
    for (let round = 0; round < 5; round++) {
      const c = await connect(round % 2 ? a.url : b.url);
      const [x, y] = await Promise.all([
        request(c.socket, 'room:join', { roomCode: r1.code, guestName: 'twice' }),
        request(c.socket, 'room:join', { roomCode: r2.code, guestName: 'twice' }),
      ]);
      assert.equal([x, y].filter((res) => res.ok).length, 1, 'one join admitted');
      const loser = [x, y].find((res) => !res.ok)!;
      assert.equal(!loser.ok && loser.error.code, 'ALREADY_IN_ROOM');
      c.socket.disconnect(); // deliberate: leaves at once
      const r = await redisClient(cluster.redis.url);
      try {
        await until(async () => !(await r.hExists(new Keys(cluster.redis.prefix).room(r1.code).members, c.session.clientId)) && !(await r.hExists(new Keys(cluster.redis.prefix).room(r2.code).members, c.session.clientId)), 3000, 'member gone from both rooms');
      } finally {
        await r.quit();
      }
    }
  });

  test('a user with several sockets shares one publish budget per room', async () => {
    const room = await createRoomHttp(a.url);
    const token = await signJwt({ sub: 'flooder' });
    const sockets = await Promise.all([a, b, a].map(async (w) => (await connect(w.url, { auth: { token } })).socket));
    // Each device is a member of its own (three clientIds of one user).
    for (const [i, s] of sockets.entries()) await ok(s, 'room:join', { roomCode: room.code, guestName: `d${i}` });
    const results = await Promise.all(
      sockets.flatMap((s, i) => Array.from({ length: 10 }, (_, j) => request(s, 'room:publish', { type: 'flood', data: j, clientMsgId: `f${i}-${j}` }))),
    );
    const accepted = results.filter((r) => r.ok).length;
    // Burst 10 per user per room (+ a refill of 5/s during the burst), not 3 × 10.
    assert.ok(accepted >= 10 && accepted <= 13, `accepted ${accepted} of 30`);
    const refused = results.find((r) => !r.ok);
    assert.equal(refused && !refused.ok && refused.error.code, 'RATE_LIMITED');
    // Another member is untouched.
    const other = await connect(b.url);
    await ok(other.socket, 'room:join', { roomCode: room.code, guestName: 'calm' });
    assert.equal((await request(other.socket, 'room:publish', { type: 'calm', data: 1, clientMsgId: 'x' })).ok, true);
  });

  test('__proto__ keys are refused, everything else arrives intact; names are cleaned', async () => {
    const room = await createRoomHttp(a.url);
    const sender = await connect(a.url);
    const receiver = await connect(b.url);
    const got = record(receiver.socket);
    await ok(sender.socket, 'room:join', { roomCode: room.code, guestName: '\u202eevil\u0000 \u001b[31mname\u200b' });
    const joined = await ok(receiver.socket, 'room:join', { roomCode: room.code, guestName: '\u200b\u200b' }).then(
      () => 'ok',
      (e: Error) => e.message,
    );
    assert.match(joined, /INVALID_PAYLOAD/, 'a name with nothing visible is refused');
    await ok(receiver.socket, 'room:join', { roomCode: room.code, guestName: 'receiver' });
    const state = await ok(receiver.socket, 'room:rejoin', { roomId: room.code });
    void state;
    const snapshot = got.filter((e) => e.name === 'room:state' || e.name === 'room:state_snapshot').at(-1)!.payload;
    const names = snapshot.participants.map((p: { name: string }) => p.name).sort();
    assert.deepEqual(names, ['evil [31mname', 'receiver'], 'control, bidi and zero-width characters stripped');

    const proto = JSON.parse('{"a":1,"__proto__":{"polluted":true}}');
    const res = await request(sender.socket, 'room:publish', { type: 'p', data: proto, clientMsgId: 'p1' });
    assert.equal(!res.ok && res.error.code, 'INVALID_PAYLOAD');
    const odd = { 'constructor': { prototype: 1 }, 'é\u0301': '🎉\ud83d', toString: 'x', '': [null, -0, 1e308] };
    await ok(sender.socket, 'room:publish', { type: 'p', data: odd, clientMsgId: 'p2' });
    await until(() => got.some((e) => e.name === 'room:event' && e.payload.type === 'p'), 3000, 'odd data delivered');
    assert.deepEqual(got.find((e) => e.name === 'room:event' && e.payload.type === 'p')!.payload.data, JSON.parse(JSON.stringify(odd)));
  });

  test('every HTTP error carries { error: { code, message } }: 400, 404, 413, 414, 415, 431; 128-character user ids work', async () => {
    const shape = async (res: Response, status: number, code: string) => {
      assert.equal(res.status, status, `${code} status`);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, code);
      assert.equal(typeof body.error.message, 'string');
    };
    const svc = { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' };
    const longId = 'u'.repeat(128);
    const sent = await fetch(`${a.url}/v1/users/${longId}/messages`, { method: 'POST', headers: svc, body: JSON.stringify({ type: 't', data: 1 }) });
    assert.equal(sent.status, 201, '128-character user id accepted');
    await shape(await fetch(`${a.url}/v1/users/${'u'.repeat(600)}/messages`, { method: 'POST', headers: svc, body: '{}' }), 414, 'URI_TOO_LONG');
    await shape(await fetch(`${a.url}/v1/users/${'u'.repeat(129)}/messages`, { method: 'POST', headers: svc, body: JSON.stringify({ type: 't', data: 1 }) }), 400, 'INVALID_PAYLOAD');
    await shape(await fetch(`${a.url}/v1/rooms/ABCDEFGH/events`, { method: 'POST', headers: svc, body: JSON.stringify({ type: 't', data: 'x'.repeat(70_000) }) }), 413, 'PAYLOAD_TOO_LARGE');
    await shape(await fetch(`${a.url}/v1/rooms/ABCDEFGH/events`, { method: 'POST', headers: { ...svc, 'content-type': 'text/plain' }, body: 'hello' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await shape(await fetch(`${a.url}/v1/rooms/ABCDEFGH/events`, { method: 'POST', headers: svc, body: '{"type":' }), 400, 'INVALID_PAYLOAD');
    await shape(await fetch(`${a.url}/v1/nope`), 404, 'NOT_FOUND');
    // Headers over Node's 16 KiB limit never reach Fastify; the answer keeps the shape.
    const big = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${a.url}/healthz`, { headers: { 'x-big': 'y'.repeat(20_000) } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(big.status, 431);
    assert.equal((JSON.parse(big.body) as { error: { code: string } }).error.code, 'HEADERS_TOO_LARGE');
    assertWorkersAlive();
  });
});

/**
 * Issue #12: random and adversarial input to every request event, the handshake, raw Socket.IO
 * frames and every HTTP route, against two real workers. Properties: every request is answered
 * (an ack, or — over MAX_PAYLOAD_BYTES — a close with 1009), no HTTP answer is a 5xx or lacks the
 * `{ error: { code, message } }` shape, and no worker process ever changes its PID.
 * Seeded (FUZZ_SEED to replay a failure), bounded in runs and time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { JWT_SECRET, SERVICE_TOKEN, type Worker } from '../helpers/workers.ts';
import { createRoomHttp, signJwt } from '../helpers/clients.ts';
import { closeAllRaw, deepJson, rawConnect, type RawClient } from '../helpers/raw.ts';
import { REQUEST_EVENTS } from '@tether/protocol';

const SEED = Number(process.env.FUZZ_SEED ?? 20261130);
const MAX_PAYLOAD_BYTES = 65536;
let cluster: TestCluster;
let pids: number[];
let roomCode: string;

before(async () => {
  cluster = await startCluster(2, { PUBLISH_RATE_PER_SEC: '100000', PUBLISH_BURST: '100000', ROOM_PUBLISH_RATE_PER_SEC: '100000', ROOM_PUBLISH_BURST: '100000', SIGNAL_RATE_PER_SEC: '100000', ROOM_SIGNALS_PER_SEC: '100000', CATCHUPS_PER_CLIENT_PER_MIN: '1000000' });
  pids = cluster.workers.map((w) => w.process.pid!);
  roomCode = (await createRoomHttp(cluster.workers[0]!.url)).code;
});
after(async () => {
  closeAllRaw();
  await cluster?.stop();
});

function assertWorkersAlive(): void {
  for (const [i, w] of cluster.workers.entries()) {
    assert.equal(w.process.exitCode, null, `worker ${w.nodeId} exited:\n${w.output.slice(-30).join('\n')}`);
    assert.equal(w.process.pid, pids[i], 'same worker process');
  }
  for (const w of cluster.workers) {
    const bad = w.output.filter((l) => /uncaught|unhandled|RangeError/i.test(l));
    assert.deepEqual(bad, [], `${w.nodeId} logged no uncaught errors`);
  }
}

/** JSON text of hostile shapes. */
const hostileJson: fc.Arbitrary<string> = fc.oneof(
  fc.jsonValue({ maxDepth: 40 }).map((v) => JSON.stringify(v)),
  fc.integer({ min: 30, max: 20_000 }).map((d) => deepJson(d)),
  fc.array(fc.integer(), { maxLength: 4000 }).map((v) => JSON.stringify(v)),
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => JSON.stringify({ type: 't', data: s, clientMsgId: 'u1', roomCode: s, guestName: s, roomId: s })),
  fc.string({ minLength: 1000, maxLength: 80_000 }).map((s) => JSON.stringify({ type: 'big', data: s, clientMsgId: 'big' })),
  fc.constantFrom(
    '{"__proto__":{"polluted":1},"type":"x","data":1,"clientMsgId":"p"}',
    '{"constructor":{"prototype":{"polluted":1}},"type":"x","data":{"constructor":{"prototype":1}},"clientMsgId":"c"}',
    '{"type":"x","data":[1e308,-1e308,5e-324,-0,1.7976931348623157e308],"clientMsgId":"n"}',
    '{"type":"x","data":"\\ud800\\udfff\\u0000\\u202e","clientMsgId":"s"}',
    '{"roomCode":"' + 'A'.repeat(10_000) + '"}',
    '{"ids":' + JSON.stringify(Array.from({ length: 600 }, (_, i) => `id${i}`)) + '}',
    '{"fromSeq":1e300,"roomId":"x"}',
    '{"clientTimestamp":1e999}',
    'null',
    '"a string"',
    '12345',
    '[]',
    'true',
  ),
);

/** A known-good payload of each event with one field replaced by something hostile. */
const fieldFuzz: fc.Arbitrary<string> = fc
  .record({
    key: fc.constantFrom('type', 'data', 'clientMsgId', 'roomId', 'roomCode', 'password', 'guestName', 'lastSeq', 'incarnation', 'fromSeq', 'limit', 'positionMs', 'trackId', 'toUserId', 'ids', 'rttMs'),
    value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string({ unit: 'binary' }), fc.double(), fc.constant(null)),
  })
  .map(({ key, value }) => JSON.stringify({ roomId: roomCode, type: 'x', data: 1, clientMsgId: 'f', [key]: value }));

describe('fuzz', () => {
  test('every request event answers every hostile payload; no worker dies', { timeout: 240_000 }, async () => {
    let client: RawClient | undefined;
    const fresh = async () => {
      client?.close();
      const worker = cluster.workers[Math.floor(Math.random() * 2)]!;
      client = await rawConnect(worker.url, JSON.stringify({ token: await signJwt({ sub: `fuzzer-${Math.random()}` }) }));
      assert.ok((await client.connected).sid, 'fuzz client connected');
      await client.request('room:join', JSON.stringify({ roomCode, guestName: 'fuzzer' }));
      return client;
    };
    let answered = 0;
    let closedTooLarge = 0;
    for (const event of REQUEST_EVENTS) {
      await fc.assert(
        fc.asyncProperty(fc.oneof(hostileJson, fieldFuzz), async (payload) => {
          const c = client && client.ws.readyState === client.ws.OPEN ? client : await fresh();
          const ack = await c.request(event, payload, 5000);
          if (ack !== null) {
            answered++;
            const body = JSON.parse(ack) as [{ ok: boolean; error?: { code: string } }];
            assert.equal(typeof body[0].ok, 'boolean', `${event}: ack shape`);
            if (!body[0].ok) assert.notEqual(body[0].error?.code, 'INTERNAL_ERROR', `${event}: ${payload.slice(0, 200)}`);
            return;
          }
          // No ack: only a frame over the limit may do that, and the server closed with 1009.
          assert.ok(Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES - 100, `${event} unanswered: ${payload.slice(0, 200)}`);
          const { code } = await c.closed;
          assert.equal(code, 1009, 'closed as too big');
          closedTooLarge++;
        }),
        { numRuns: 40, seed: SEED, endOnFailure: true },
      );
    }
    client?.close();
    // A frame over MAX_PAYLOAD_BYTES is never parsed: the connection closes with 1009 (message too big).
    const big = await fresh();
    void big.request('room:publish', JSON.stringify({ type: 'big', data: 'x'.repeat(MAX_PAYLOAD_BYTES + 10), clientMsgId: 'big' }), 3000);
    assert.equal((await big.closed).code, 1009);
    assert.ok(answered > REQUEST_EVENTS.length * 30, `answered ${answered}`);
    process.stdout.write(`# fuzz: ${answered} acks, ${closedTooLarge} closed with 1009\n`);
    assertWorkersAlive();
  });

  test('hostile handshakes and raw malformed frames never kill a worker', { timeout: 120_000 }, async () => {
    const worker = (i: number): Worker => cluster.workers[i % 2]!;
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostileJson, fc.string({ unit: 'binary', maxLength: 300 })), fc.nat(), async (auth, i) => {
        const c = await rawConnect(worker(i).url, auth);
        const outcome = await Promise.race([c.connected, c.closed.then(() => ({ closed: true }))]);
        assert.ok(outcome, 'handshake answered');
        c.close();
      }),
      { numRuns: 60, seed: SEED },
    );
    const frames = fc.oneof(
      fc.constantFrom(
        '42/sync,',
        '42/sync,[',
        '42/sync,1["room:join"',
        '42/sync,99999999999999999999["room:join",{}]',
        '451-/sync,["room:publish",{"_placeholder":true,"num":0}]',
        '4599999999-/sync,["room:publish",{}]',
        '42/other,["room:join",{}]',
        '43/sync,1[]',
        '41/sync,',
        '40/sync,{}',
        '42/sync,["__proto__",{}]',
        '42/sync,[{"__proto__":1}]',
        '42/sync,[null]',
        '42/sync,[]',
        '6',
        '5',
        '1',
        `42/sync,["room:publish",${deepJson(50_000)}]`,
      ),
      fc.string({ unit: 'binary', maxLength: 500 }).map((s) => `4${s}`),
      fc.string({ unit: 'binary', maxLength: 500 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(frames, { minLength: 1, maxLength: 5 }), fc.nat(), async (batch, i) => {
        const c = await rawConnect(worker(i).url);
        await c.connected;
        for (const f of batch) c.send(f);
        c.ws.send(Buffer.from(batch.join('')));
        await new Promise((r) => setTimeout(r, 20));
        c.close();
      }),
      { numRuns: 80, seed: SEED },
    );
    await new Promise((r) => setTimeout(r, 500));
    assertWorkersAlive();
    for (const w of cluster.workers) assert.equal((await fetch(`${w.url}/healthz`)).status, 200);
  });

  test('every HTTP route answers hostile requests in the documented shape, never 5xx', { timeout: 120_000 }, async () => {
    const userJwt = await signJwt({ sub: 'http-fuzzer' });
    void JWT_SECRET;
    const routes = [
      { method: 'POST', path: () => '/v1/rooms', auth: `Bearer ${userJwt}` },
      { method: 'GET', path: (p: string) => `/v1/rooms/${p}`, auth: '' },
      { method: 'POST', path: (p: string) => `/v1/rooms/${p}/events`, auth: `Bearer ${SERVICE_TOKEN}` },
      { method: 'POST', path: (p: string) => `/v1/users/${p}/messages`, auth: `Bearer ${SERVICE_TOKEN}` },
      { method: 'GET', path: () => '/readyz', auth: '' },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.oneof(fc.constant(roomCode), fc.string({ maxLength: 700 }), fc.string({ unit: 'binary', maxLength: 60 })),
        fc.oneof(hostileJson, fc.string({ unit: 'binary', maxLength: 300 })),
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', ''),
        fc.nat(),
        async (route, param, body, contentType, i) => {
          const headers: Record<string, string> = {};
          if (contentType) headers['content-type'] = contentType;
          if (route.auth) headers.authorization = route.auth;
          let url: string;
          try {
            url = `${cluster.workers[i % 2]!.url}${route.path(encodeURIComponent(param))}`;
          } catch {
            return; // not encodable (lone surrogate): nothing a real client could send
          }
          const res = await fetch(url, { method: route.method, headers, ...(route.method === 'POST' ? { body } : {}) });
          assert.ok(res.status < 500, `${route.method} ${url.slice(0, 120)} → ${res.status}`);
          if (res.status >= 400) {
            const json = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
            assert.equal(typeof json.error?.code, 'string', 'error shape');
            assert.equal(typeof json.error?.message, 'string', 'error shape');
          } else await res.arrayBuffer();
        },
      ),
      { numRuns: 300, seed: SEED },
    );
    assertWorkersAlive();
  });
});

/**
 * What `npm start` runs: `node dist/main.js --cluster` — a primary handing connections to two
 * workers (src/cluster/front.ts), and its own redis-server (no REDIS_URL). Driven through the
 * primary's single port.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { closeAll, connect, createRoomHttp, ok, record, request, signJwt, until } from '../helpers/clients.ts';
import { startPrimary, type Primary } from '../helpers/primary.ts';

let primary: Primary;
let url: string;

before(async () => {
  // SHUTDOWN_TIMEOUT_MS well above what a clean stop needs: a worker that waits for it is stuck.
  primary = await startPrimary({ workers: 2, env: { SHUTDOWN_TIMEOUT_MS: '20000' } });
  url = primary.url;
});
after(() => {
  closeAll();
  primary?.kill();
});

test('the local cluster serves HTTP and sockets on one port, sticky across workers', async () => {
  assert.match(primary.output(), /started local redis-server \(pid \d+\) on redis:\/\/127\.0\.0\.1:\d+/);
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
  // The demo room page and the SDK bundle it loads, through the primary's front.
  const page = await fetch(`${url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await page.text(), /<title>Tether demo room<\/title>/);
  assert.equal((await fetch(`${url}/assets/tether-client.min.js`)).status, 200);
  const room = await createRoomHttp(url, { name: 'local' }, 'alice');
  const alice = await connect(url, { auth: { token: await signJwt({ sub: 'alice', name: 'Alice' }) } });
  const aliceEvents = record(alice.socket);
  await ok(alice.socket, 'room:join', { roomCode: room.code });
  // Long-polling needs every request of a session on one worker: the primary routes by sid.
  const guest = await connect(url, { transports: ['polling'] });
  const joined = await ok(guest.socket, 'room:join', { roomCode: room.code, guestName: 'Gus' });
  assert.deepEqual(joined.participants.map((p) => p.name).sort(), ['Alice', 'Gus']);
  await until(() => aliceEvents.some((e) => e.name === 'room:participant:joined'), 5000, 'alice sees the guest');
  for (let i = 0; i < 5; i++) await ok(guest.socket, 'room:publish', { type: 'n', data: i, clientMsgId: `m${i}` });
  await until(() => aliceEvents.filter((e) => e.name === 'room:event').length === 5, 5000, 'five events');
  const bad = await request(guest.socket, 'room:join', { roomCode: 'ZZZZZZZZ' });
  assert.equal(!bad.ok && bad.error.code, 'ALREADY_IN_ROOM');
  const nodes = new Set<string>();
  for (let i = 0; i < 6; i++) nodes.add((await connect(url)).session.nodeId);
  assert.equal(nodes.size, 2, 'connections are spread over both workers');
});

test('Ctrl-C stops the workers cleanly first, then the redis-server it started', async () => {
  const redisPort = Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(primary.output())![1]);
  // Members in a room when Ctrl-C comes: their disconnects need Redis while the workers drain.
  const room = await createRoomHttp(url, { name: 'ctrl-c' }, 'carol');
  for (let i = 0; i < 20; i++) {
    const c = await connect(url);
    await ok(c.socket, 'room:join', { roomCode: room.code, guestName: `g${i}` });
  }
  const exited = new Promise<number | null>((r) => primary.process.once('exit', r));
  // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group (the primary and
  // its workers; `npm start` adds its own forwarded SIGINT).
  process.kill(-primary.process.pid!, 'SIGINT');
  assert.equal(await exited, 0);
  const out = primary.output();
  // Redis is alive until the workers are gone (ECONNREFUSED is what a redis-server stopped by the
  // same Ctrl-C produced), and no worker had to wait for SHUTDOWN_TIMEOUT_MS.
  assert.doesNotMatch(out, /ECONNREFUSED/, 'no worker lost Redis');
  assert.doesNotMatch(out, /shutdown timeout/, 'no worker waited for the shutdown timeout');
  assert.match(out, /worker 0 exited \(0\)/);
  assert.match(out, /worker 1 exited \(0\)/);
  const redisStopped = out.indexOf('stopped local redis-server');
  assert.ok(redisStopped > out.indexOf('worker 0 exited (0)') && redisStopped > out.indexOf('worker 1 exited (0)'), 'redis-server stops after the workers');
  const refused = await new Promise<boolean>((resolve) => {
    const s = createConnection(redisPort, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
  assert.ok(refused, 'redis-server is gone');
});

/**
 * What `npm start` runs: `node dist/main.js --cluster` — a primary with @socket.io/sticky, two
 * workers, and its own redis-server (no REDIS_URL). Driven through the primary's single port.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/cluster/local-redis.ts';
import { track } from '../helpers/processes.ts';
import { JWT_SECRET } from '../helpers/workers.ts';
import { closeAll, connect, createRoomHttp, ok, record, request, signJwt, until } from '../helpers/clients.ts';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
let primary: ChildProcess;
let url: string;
let dir: string;
let output = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tether-start-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  primary = track(
    spawn(process.execPath, [MAIN, '--cluster'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', PORT: String(port), WORKERS: '2', JWT_SECRET, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  primary.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  primary.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await until(() => output.includes('ready on'), 30_000, `cluster ready (output so far: ${output})`);
});
after(async () => {
  closeAll();
  if (primary.exitCode === null) primary.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('the local cluster serves HTTP and sockets on one port, sticky across workers', async () => {
  assert.match(output, /started local redis-server on redis:\/\/127\.0\.0\.1:\d+/);
  assert.equal((await fetch(`${url}/readyz`)).status, 200);
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

test('Ctrl-C stops the workers and the redis-server it started', async () => {
  const redisPort = Number(/redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)![1]);
  closeAll();
  const exited = new Promise<number | null>((r) => primary.once('exit', r));
  primary.kill('SIGINT');
  assert.equal(await exited, 0);
  assert.match(output, /stopped local redis-server/);
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

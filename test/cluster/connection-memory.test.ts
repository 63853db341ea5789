/**
 * What an idle connection keeps: once the handshake has read it, the WebSocket upgrade request (its
 * headers, parser and socket state: about 1 KB per connection) is released — and what it was read
 * for still works afterwards (the address limits need, a password join, the session).
 * Checked on a real worker through a preloaded probe that watches the requests be collected.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { closeAll, connect, createRoomHttp, ok, request, signJwt, until, type TestSocket } from '../helpers/clients.ts';

const PROBE = fileURLToPath(new URL('../helpers/upgrade-probe.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tether-upgrade-probe-'));
const file = join(dir, 'probe.json');
let redis: TestRedis | undefined;
let worker: Worker | undefined;

before(async () => {
  redis = await startRedis();
  worker = await startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeArgs: ['--expose-gc', '--import', PROBE], env: { UPGRADE_PROBE_FILE: file } });
});
after(async () => {
  closeAll();
  await worker?.kill('SIGKILL');
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function probe(): Promise<{ upgrades: number; alive: number }> {
  rmSync(file, { force: true });
  worker!.process.kill('SIGUSR2');
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as { upgrades: number; alive: number };
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

test('a connected client no longer holds its upgrade request; address, password join and session still work', async () => {
  const w = worker!;
  const room = await createRoomHttp(w.url, { password: 'hunter2' });
  const sockets: TestSocket[] = [];
  const N = 40;
  let participants = 0;
  for (let i = 0; i < N; i++) {
    const auth = i % 2 ? { token: await signJwt({ sub: `u${i}`, name: `user ${i}` }) } : {};
    // Every fourth starts on long-polling and upgrades, as socket.io-client does by default.
    const c = await connect(w.url, { auth, ...(i % 4 === 3 ? { transports: ['polling', 'websocket'] as ('polling' | 'websocket')[] } : {}) });
    // A password join reads the client's address (per-address attempt budget) after the request is gone.
    participants = (await ok(c.socket, 'room:join', { roomCode: room.code, password: 'hunter2' })).participants.length;
    sockets.push(c.socket);
  }
  assert.equal(participants, N);
  // Every socket is still served.
  const sent = await ok(sockets[0]!, 'room:publish', { roomId: room.id, type: 'note', data: 1, clientMsgId: 'm1' });
  assert.ok(sent.seq > 0);
  const wrong = await request(sockets[0]!, 'room:join', { roomCode: room.code, password: 'nope' });
  assert.equal(!wrong.ok && wrong.error.code, 'INVALID_PASSWORD');

  await until(() => sockets.every((s) => s.io.engine.transport.name === 'websocket'), 10_000, 'every polling client upgraded');
  const p = await probe();
  assert.ok(p.upgrades >= N, `the probe saw ${p.upgrades} upgrades for ${N} connections`);
  // Without the release every live connection keeps its request: alive would be ≥ N.
  assert.ok(p.alive < N / 4, `${p.alive} of ${p.upgrades} upgrade requests still alive with ${N} connections open`);
  for (const s of sockets) assert.equal(s.connected, true);
});

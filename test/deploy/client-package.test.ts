/**
 * Issue #13: the SDK ships as its own package. Packs @tether/protocol and @tether/client the way
 * npm publishes them, installs the tarballs into an empty folder (nothing of the server comes
 * along), type-checks an app against them, and connects that app to a real worker.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { createRoomHttp } from '../helpers/clients.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let dir: string;
let cluster: TestCluster;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tether-client-pkg-'));
  cluster = await startCluster(1);
});
after(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the client package installs alone, type-checks, and connects to a worker', { timeout: 240_000 }, async () => {
  const tarballs = join(dir, 'tarballs');
  execFileSync('mkdir', ['-p', tarballs]);
  for (const pkg of ['protocol', 'client']) {
    execFileSync(NPM, ['pack', '--silent', '--pack-destination', tarballs], { cwd: join(ROOT, 'packages', pkg), stdio: ['ignore', 'pipe', 'inherit'] });
  }
  const files = readdirSync(tarballs).map((f) => join(tarballs, f));
  assert.equal(files.length, 2);
  const app = join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'an-app', private: true, type: 'module' }));
  execFileSync(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', ...files], { cwd: app, stdio: ['ignore', 'pipe', 'inherit'] });

  // What came along: the SDK, the contract and socket.io-client's own tree — no server package.
  const tree = execFileSync(NPM, ['ls', '--all', '--parseable'], { cwd: app, encoding: 'utf8' }).trim().split('\n').slice(1);
  const names = tree.map((p) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length));
  process.stdout.write(`# client package dependency tree: ${names.length} packages (${names.join(', ')})\n`);
  for (const server of ['fastify', 'ioredis', 'redis', 'bullmq', 'pino', 'zod', 'socket.io', 'prom-client']) assert.ok(!names.includes(server), `${server} is not installed with the client`);
  assert.ok(names.includes('socket.io-client'));
  assert.ok(existsSync(join(app, 'node_modules/@tether/client/dist/tether-client.min.js')), 'standalone browser bundle shipped');
  assert.ok(!readFileSync(join(app, 'node_modules/@tether/client/dist/index.d.ts'), 'utf8').includes('zod'), 'types need no zod');

  // An app in TypeScript compiles against the published types alone.
  writeFileSync(
    join(app, 'check.ts'),
    `import { TetherClient, type Room } from '@tether/client';
import type { RoomEvent } from '@tether/protocol';
const c = new TetherClient({ url: 'http://127.0.0.1:1' });
const handle = (e: RoomEvent) => e.seq;
export async function join(code: string): Promise<Room> { const r = await c.join(code); r.on('event', (e) => void handle(e as RoomEvent)); return r; }
`,
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { noEmit: true, strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', types: [], skipLibCheck: false }, files: ['check.ts'] }),
  );
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });

  // And it talks to a real worker: two clients in one room, one publishes, the other receives.
  const room = await createRoomHttp(cluster.workers[0]!.url);
  writeFileSync(
    join(app, 'run.mjs'),
    `import { TetherClient } from '@tether/client';
const url = process.argv[2], code = process.argv[3];
const a = new TetherClient({ url, clockSync: false }), b = new TetherClient({ url, clockSync: false });
const ra = await a.join(code, { guestName: 'a' }), rb = await b.join(code, { guestName: 'b' });
const got = new Promise((resolve) => rb.on('event', (e) => resolve(e)));
await ra.publish('greeting', { hello: 'from a packed SDK' }).sent();
const e = await got;
console.log(JSON.stringify({ type: e.type, data: e.data, seq: e.seq }));
a.close(); b.close();
`,
  );
  const out = execFileSync(process.execPath, ['run.mjs', cluster.workers[0]!.url, room.code], { cwd: app, encoding: 'utf8', timeout: 30_000 });
  const received = JSON.parse(out.trim().split('\n').at(-1)!) as { type: string; data: unknown; seq: number };
  assert.deepEqual({ type: received.type, data: received.data }, { type: 'greeting', data: { hello: 'from a packed SDK' } });
});

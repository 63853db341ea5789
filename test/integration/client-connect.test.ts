/**
 * Issue #11 point 1, SDK side: a front that opens the Engine.IO session but never answers the
 * namespace connect (`40/sync`) must not strand the SDK — the whole attempt up to `session` is
 * timed (`connectTimeoutMs`) and retried with backoff. A raw TCP proxy swallows the client's first
 * WebSocket frame after the upgrade for the first connections. Also the status the app sees:
 * `connecting` (first connect, with the attempt number) vs `reconnecting` (later ones).
 * Run `npm run build` first when dist/ is stale.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TetherClient } from '../../packages/client/src/index.ts';
import type { ClientStatus } from '../../packages/client/src/index.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { until } from '../helpers/clients.ts';

let cluster: TestCluster;
const proxies: Proxy[] = [];
const clients = new Set<TetherClient>();

before(async () => {
  cluster = await startCluster(1);
});

after(async () => {
  for (const c of clients) c.close();
  await Promise.all(proxies.map((p) => p.close()));
  await cluster?.stop();
});

test('namespace connects that are never answered: the SDK times the attempt out, retries with backoff and gets in', { timeout: 60_000 }, async () => {
  const proxy = await startProxy(cluster.workers[0]!.port, { swallowHandshake: (n) => n < 2 });
  proxies.push(proxy);
  const c = new TetherClient({ url: proxy.url, clockSync: false, connectTimeoutMs: 800, reconnect: { baseMs: 100, maxMs: 400 } });
  clients.add(c);
  const errors: string[] = [];
  const statuses: ClientStatus[] = [];
  c.on('error', (e) => void errors.push('code' in e ? e.code : e.message));
  c.on('status', (s) => void statuses.push(s));
  const session = await c.connect();
  assert.equal(proxy.swallowed, 2, 'the first two handshakes were swallowed');
  assert.equal(proxy.connections, 3);
  assert.deepEqual(errors, ['TIMEOUT', 'TIMEOUT']);
  assert.equal(c.status.state, 'connected');
  assert.ok(session.clientId);
  const attempts = statuses.filter((s) => s.state === 'connecting').map((s) => (s as { attempt: number }).attempt);
  assert.deepEqual([...new Set(attempts)], [1, 2, 3], 'first connect: connecting, attempts 1..3');
  assert.ok(statuses.some((s) => s.state === 'connecting' && s.delayMs > 0), 'backoff between attempts');
  assert.ok(!statuses.some((s) => s.state === 'reconnecting'), 'never "reconnecting" before the first session');

  // Later ones say reconnecting.
  statuses.length = 0;
  c.socket.io.engine.close();
  await until(() => c.status.state === 'connected' && statuses.length > 1, 10_000, 'reconnected');
  assert.equal(statuses[0]!.state, 'reconnecting');
  assert.equal((statuses[0] as { attempt: number }).attempt, 1);
});

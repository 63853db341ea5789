/**
 * Issue #12, SDK side, against a real worker with a small MAX_PAYLOAD_BYTES: an SDK that knows the
 * limit refuses an oversized publish locally and keeps its connection; one that believes a larger
 * limit gets its connection closed once (WebSocket 1009), says PAYLOAD_TOO_LARGE, fails that
 * message instead of resending it, and resumes the room.
 * Run `npm run build` first when dist/ is stale.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TetherClient, ClientError } from '../../packages/client/src/index.ts';
import type { TetherClientOptions } from '../../packages/client/src/index.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { createRoomHttp, until } from '../helpers/clients.ts';

const LIMIT = 4096;
let cluster: TestCluster;
const clients = new Set<TetherClient>();

before(async () => {
  // Event data may be larger than a message: the frame limit is what bites.
  cluster = await startCluster(1, { MAX_PAYLOAD_BYTES: String(LIMIT), MAX_EVENT_DATA_BYTES: String(64 * 1024) });
});

after(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

function client(opts: Partial<TetherClientOptions>) {
  const c = new TetherClient({ url: cluster.workers[0]!.url, clockSync: false, requestTimeoutMs: 4000, reconnect: { baseMs: 50, maxMs: 200 }, ...opts });
  clients.add(c);
  const disconnects: { reason: string; code?: string }[] = [];
  const errors: string[] = [];
  c.on('disconnected', (d) => void disconnects.push(d));
  c.on('error', (e) => void errors.push(e instanceof ClientError ? e.code : e.message));
  return { c, disconnects, errors };
}

test('maxPayloadBytes = the server limit: refused locally, the connection and the room stay', { timeout: 30_000 }, async () => {
  const { id: roomId } = await createRoomHttp(cluster.workers[0]!.url);
  const { c, disconnects } = client({ maxPayloadBytes: LIMIT });
  const room = await c.join(roomId);
  const seqs: number[] = [];
  room.on('event', (e) => void seqs.push(e.seq));
  const big = room.publish('blob', { text: 'x'.repeat(LIMIT) });
  assert.equal(big.error?.code, 'PAYLOAD_TOO_LARGE');
  const small = await room.publish('note', { text: 'fits' }).sent();
  await until(() => seqs.includes(small.seq), 5000, 'the small one delivered');
  assert.deepEqual(disconnects, []);
  assert.equal(room.status, 'live');
});

test('a limit the SDK did not know: one 1009 close, PAYLOAD_TOO_LARGE, the message fails, the room resumes', { timeout: 30_000 }, async () => {
  const { id: roomId } = await createRoomHttp(cluster.workers[0]!.url);
  const { c, disconnects, errors } = client({});
  const room = await c.join(roomId);
  const resumed: boolean[] = [];
  room.on('resumed', (r) => void resumed.push(r.recovered));
  const big = room.publish('blob', { text: 'x'.repeat(2 * LIMIT) });
  const failure = await big.sent().then(
    () => 'sent',
    (e: ClientError) => e.code,
  );
  assert.equal(failure, 'PAYLOAD_TOO_LARGE');
  assert.deepEqual(disconnects, [{ reason: 'transport close', code: 'PAYLOAD_TOO_LARGE' }]);
  assert.ok(errors.includes('PAYLOAD_TOO_LARGE'));
  await until(() => resumed.length === 1, 10_000, 'room resumed');
  assert.deepEqual(resumed, [true]);
  const small = await room.publish('note', { text: 'fits' }).sent();
  assert.ok(small.seq > 0);
  await sleep(300);
  assert.equal(disconnects.length, 1, 'not resent into the same wall');
});

/**
 * Issue #11 point 7, SDK side, against a real worker: a broadcast lost on a connection that stays
 * up — here dropped by a proxy between the worker and the client — reaches the app from the
 * room's periodic `room:head`, with nothing published after it, without a reconnect.
 *
 * The worker sends `room:head` every ROOM_HEAD_INTERVAL_MS (500 ms here) to rooms whose seq moved.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TetherClient } from '../../packages/client/src/index.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { connect, createRoomHttp, ok, publishHttp, record, until } from '../helpers/clients.ts';

const HEAD_MS = 500;
let cluster: TestCluster;
let proxy: Proxy;
const clients = new Set<TetherClient>();

before(async () => {
  cluster = await startCluster(1, { ROOM_HEAD_INTERVAL_MS: String(HEAD_MS) });
  // Only the broadcast (`42/sync,["room:event",…]`): the catch-up answer that fills it (`43…`) passes.
  proxy = await startProxy(cluster.workers[0]!.port, { dropServerFrame: (text) => text.startsWith('42') && text.includes('"lose-me"') });
});

after(async () => {
  for (const c of clients) c.close();
  await proxy?.close();
  await cluster?.stop();
});

/** Whether the worker sends room:head to a room with recent activity. */
async function workerSendsHeads(): Promise<boolean> {
  const { id: roomId } = await createRoomHttp(cluster.workers[0]!.url);
  const { socket } = await connect(cluster.workers[0]!.url);
  await ok(socket, 'room:join', { roomCode: roomId });
  await publishHttp(cluster.workers[0]!.url, roomId, { type: 'probe', data: 1 });
  const events = record(socket);
  await sleep(3 * HEAD_MS);
  socket.close();
  return events.some((e) => e.name === 'room:head');
}

test('a broadcast lost on a live connection reaches the app from the room head, no reconnect', { timeout: 60_000 }, async (t) => {
  void t;
  assert.ok(await workerSendsHeads(), 'the worker sends room:head to rooms with recent activity');
  const { id: roomId } = await createRoomHttp(cluster.workers[0]!.url);
  const c = new TetherClient({ url: proxy.url, clockSync: false, holeWaitMs: 100 });
  clients.add(c);
  c.on('error', () => undefined);
  const room = await c.join(roomId);
  const types: string[] = [];
  const resumed: boolean[] = [];
  const disconnects: string[] = [];
  room.on('event', (e) => void types.push(e.type));
  room.on('resumed', (r) => void resumed.push(r.recovered));
  c.on('disconnected', (d) => void disconnects.push(d.reason));

  await publishHttp(cluster.workers[0]!.url, roomId, { type: 'before', data: 1 });
  await until(() => types.includes('before'), 5000, 'first event');
  const lostAt = Date.now();
  await publishHttp(cluster.workers[0]!.url, roomId, { type: 'lose-me', data: 2 });
  await until(() => proxy.dropped === 1, 5000, 'the broadcast dropped on the way');
  await until(() => types.includes('lose-me'), 2 * HEAD_MS + 2000, 'the lost event, filled from the head');
  console.log(`# lost broadcast reached the app after ${Date.now() - lostAt} ms (head interval ${HEAD_MS} ms)`);
  assert.deepEqual(types, ['before', 'lose-me']);
  assert.deepEqual(resumed, []);
  assert.deepEqual(disconnects, []);
});

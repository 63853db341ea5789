/**
 * Issue #16 (SDK), against a real worker and Redis: `room.history({ limit })` fills a page of
 * earlier events after a "reload" (a new TetherClient on the same stored identity takes the seat
 * back), through room:catchup pages of CATCHUP_PAGE_SIZE; and when the log's retention
 * (CATCHUP_MAX_EVENTS here) no longer reaches back, it answers `recovered: false` with exactly the
 * events the log still holds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TetherClient, memoryStorage } from '../../packages/client/src/index.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { createRoomHttp, publishHttp } from '../helpers/clients.ts';

const KEPT = 20;
let cluster: TestCluster;
const clients = new Set<TetherClient>();

before(async () => {
  cluster = await startCluster(1, { CATCHUP_MAX_EVENTS: String(KEPT), CATCHUP_PAGE_SIZE: '4' });
});
after(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

function client(storage = memoryStorage()): TetherClient {
  const c = new TetherClient({ url: cluster.workers[0]!.url, storage, clockSync: false });
  c.on('error', () => undefined);
  clients.add(c);
  return c;
}

test('after a reload, history() brings back the recent messages, oldest first, in pages', { timeout: 30_000 }, async () => {
  const { code } = await createRoomHttp(cluster.workers[0]!.url);
  const storage = memoryStorage();
  const first = client(storage);
  const room = await first.join(code, { guestName: 'Ann' });
  const sent = [];
  for (let i = 0; i < 6; i++) sent.push(await room.publish('chat', { text: `m${i}` }).sent());

  // The reload: the same stored identity on a new client takes the seat over; its join is a rejoin.
  const again = client(storage);
  const back = await again.join(code, { guestName: 'Ann' });
  assert.equal(again.clientId, first.clientId);
  const page = await back.history({ limit: 5 });
  assert.equal(page.recovered, true);
  // The takeover appended nothing (a seat taken back is not a join): the 5 newest are messages.
  assert.deepEqual(page.events.map((e) => (e.name === 'room:event' ? (e.payload.data as { text: string }).text : e.name)), ['m1', 'm2', 'm3', 'm4', 'm5']);
  assert.deepEqual(page.events.map((e) => e.seq), Array.from({ length: 5 }, (_, i) => back.seq - 4 + i), 'the 5 events up to room.seq, in order');
  // Everything since the room began: the join and the six messages, across pages of 4.
  const all = await back.history({ limit: 100 });
  assert.equal(all.recovered, true);
  assert.equal(all.fromSeq, 0);
  assert.deepEqual(
    all.events.filter((e) => e.name === 'room:event').map((e) => (e.payload as { data: { text: string } }).data.text),
    ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'],
  );
  assert.deepEqual(all.events.map((e) => e.seq), Array.from({ length: back.seq }, (_, i) => i + 1));
  assert.deepEqual(sent.map((s) => s.seq), all.events.filter((e) => e.name === 'room:event').map((e) => e.seq));
});

test('a log trimmed by retention: recovered false and exactly the events still logged', { timeout: 30_000 }, async () => {
  const { code } = await createRoomHttp(cluster.workers[0]!.url);
  const c = client();
  const room = await c.join(code, { guestName: 'Bob' });
  for (let i = 0; i < 2 * KEPT; i++) assert.equal((await publishHttp(cluster.workers[0]!.url, code, { type: 'n', data: i })).status, 201);
  await new Promise<void>((resolve) => {
    const check = () => (room.seq >= 1 + 2 * KEPT ? resolve() : setTimeout(check, 20));
    check();
  });
  const page = await room.history({ limit: 30 });
  assert.equal(page.recovered, false, 'the log keeps 20 events: 30 back is beyond it');
  assert.deepEqual(page.events.map((e) => e.seq), Array.from({ length: KEPT }, (_, i) => room.seq - KEPT + 1 + i), 'the 20 newest, in order');
  const within = await room.history({ limit: 10 });
  assert.equal(within.recovered, true);
  assert.deepEqual(within.events.map((e) => (e.payload as { data: number }).data), [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
});

/**
 * Issue #11 point 5: the documented pattern `const room = await client.join(code); room.on(…)`
 * is exactly-once over a link that delivers server→client bytes in bursts (the join's ack and the
 * events behind it reach the client in one TCP read), while another member publishes 20/s.
 * Real workers and Redis; the joiners go through a burst proxy (test/helpers/proxy.ts).
 * Run `npm run build` first when dist/ is stale.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { TetherClient } from '../../packages/client/src/index.ts';
import type { TetherClientOptions } from '../../packages/client/src/index.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { createRoomHttp, until } from '../helpers/clients.ts';

const BURST_MS = 120;
const JOINERS = 6;

let cluster: TestCluster;
let proxy: Proxy;
const clients = new Set<TetherClient>();

before(async () => {
  // The publisher's 20/s must not hit the per-connection publish limit's edge.
  cluster = await startCluster(2, { PUBLISH_RATE_PER_SEC: '100', PUBLISH_BURST: '100' });
  proxy = await startProxy(cluster.workers[1]!.port, { burstMs: BURST_MS });
});

after(async () => {
  for (const c of clients) c.close();
  await proxy?.close();
  await cluster?.stop();
});

function client(url: string, opts: Partial<TetherClientOptions> = {}): TetherClient {
  const c = new TetherClient({ url, clockSync: false, requestTimeoutMs: 5000, connectTimeoutMs: 5000, reconnect: { baseMs: 50, maxMs: 400 }, ...opts });
  c.on('error', () => undefined);
  clients.add(c);
  return c;
}

test('join over a bursty link: every joiner sees its first state, then exactly joinSeq+1..N', { timeout: 90_000 }, async () => {
  const { id: roomId } = await createRoomHttp(cluster.workers[0]!.url);
  const publisher = client(cluster.workers[0]!.url);
  const pubRoom = await publisher.join(roomId, { guestName: 'pub' });
  let publishing = true;
  const sent: Promise<unknown>[] = [];
  const publishLoop = (async () => {
    for (let i = 0; publishing; i++) {
      sent.push(pubRoom.publish('tick', { i }).sent());
      await sleep(50); // 20/s
    }
  })();

  const joiners: { c: TetherClient; seqs: number[]; states: number[]; joinSeenSeq: number }[] = [];
  for (let k = 0; k < JOINERS; k++) {
    await sleep(170 + 37 * k); // joins land at different phases of the burst cycle
    const c = client(proxy.url);
    // The documented pattern, nothing more: listeners attached after `await join()`.
    const room = await c.join(roomId, { guestName: `j${k}` });
    const rec = { c, seqs: [] as number[], states: [] as number[], joinSeenSeq: room.seq };
    room.on('state', (s) => void rec.states.push(s.seq));
    room.on('sequenced', (e) => void rec.seqs.push(e.seq));
    joiners.push(rec);
  }
  await sleep(1000);
  publishing = false;
  await publishLoop;
  await Promise.all(sent);

  // The truth: the log. A joiner's join state is at the seq of its own participant:joined.
  const log: { seq: number; name: string; payload: any }[] = [];
  for (let from = 0; ; ) {
    const page = await publisher.request('room:catchup', { roomId, fromSeq: from, limit: 500 });
    log.push(...page.events);
    if (!page.more || page.events.length === 0) break;
    from = page.events.at(-1)!.seq;
  }
  const finalSeq = log.at(-1)!.seq;
  await until(() => joiners.every(({ c }) => c.room(roomId)!.seq === finalSeq), 15_000, `every joiner at seq ${finalSeq}`);

  const lost: number[] = [];
  const problems: string[] = [];
  for (const [k, j] of joiners.entries()) {
    const joinSeq = log.find((e) => e.name === 'room:participant:joined' && e.payload.participant.clientId === j.c.clientId)!.seq;
    const expected = Array.from({ length: finalSeq - joinSeq }, (_, i) => joinSeq + 1 + i);
    const seen = new Set(j.seqs);
    lost.push(expected.filter((s) => !seen.has(s)).length);
    if (j.states[0] !== joinSeq) problems.push(`joiner ${k}: first state ${j.states[0]} (join at ${joinSeq}; room.seq after join ${j.joinSeenSeq})`);
    if (JSON.stringify(j.seqs) !== JSON.stringify(expected)) problems.push(`joiner ${k}: saw ${j.seqs.slice(0, 5).join(',')}… expected from ${joinSeq + 1}`);
  }
  console.log(`# bursty link (${BURST_MS} ms), publisher 20/s: events lost per join ${JSON.stringify(lost)}`);
  assert.deepEqual(problems, [], problems.join('\n'));
  assert.ok(joiners.every((j) => j.states.length === 1), 'one state each (no snapshot needed)');
});

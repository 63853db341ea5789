/**
 * A join whose room subscription confirms late (Redis Cluster). On a Cluster the sharded adapter
 * subscribes to a room's channel when the room's first local socket joins it; the join waits for
 * the SSUBSCRIBE's confirmation at most 2 s, then fills from the log. Worker B here sends every
 * SSUBSCRIBE 3.5 s late (TEST_SUBSCRIBE_DELAY_MS: what a subscriber connection still reconnecting
 * after a restart, or a loaded shard, does), while events are published into the rooms without
 * pause from worker A. Events appended between the fill's read (~2 s) and the confirmation
 * (~3.5 s) reach neither the fill nor B's broadcasts; B must fill again at the confirmation.
 * Room heads are off, so nothing else repairs a gap. Both paths that fill: a first join
 * (room:join) and a rejoin with a position (room:rejoin { lastSeq }).
 * Runs on its own cluster whatever TEST_REDIS_TOPOLOGY says.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { closeAll, connect, createRoomHttp, ok, publishHttp, record, until } from '../helpers/clients.ts';

const ENV = { ROOM_HEAD_INTERVAL_MS: '0', GRACE_PERIOD_MS: '20000' };
const DELAY_MS = 3500;

let redis: TestRedis;
let a: Worker;
let b: Worker;

before(async () => {
  redis = await startRedis({ topology: 'cluster' });
  [a, b] = await Promise.all([
    startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'la', env: ENV }),
    startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: 'lb', env: { ...ENV, TEST_SUBSCRIBE_DELAY_MS: String(DELAY_MS) } }),
  ]);
});
after(async () => {
  closeAll();
  await Promise.all([a, b].map((w) => w?.kill('SIGKILL')));
  await redis?.stop();
});

/** Publishes into the room over A's HTTP API every 40 ms until stopped; resolves with the acked seqs. */
function publishing(roomId: string): { stop(): Promise<number[]> } {
  const seqs: number[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const res = await publishHttp(a.url, roomId, { type: 'tick', data: { i } });
      assert.equal(res.status, 201, `publish ${i}: HTTP ${res.status}`);
      seqs.push(((await res.json()) as { seq: number }).seq);
      await sleep(40);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return seqs;
    },
  };
}

async function lateSubscriptions(w: Worker): Promise<number> {
  const text = await (await fetch(`${w.url}/metrics`)).text();
  return Number(/^tether_late_subscriptions_total (\d+)/m.exec(text)?.[1] ?? 0);
}

/** Every seq in (from, to] among the recorded room:events (live or filled; a seq twice is fine). */
function missing(got: { name: string; payload: any }[], from: number, to: number): number[] {
  const have = new Set(got.filter((e) => e.name === 'room:event').map((e) => e.payload.seq as number));
  const out: number[] = [];
  for (let s = from + 1; s <= to; s++) if (!have.has(s)) out.push(s);
  return out;
}

test('a join whose subscription confirms after its 2 s wait gets what was appended meanwhile', { timeout: 30_000 }, async (t) => {
  const room = await createRoomHttp(a.url);
  const host = await connect(a.url);
  await ok(host.socket, 'room:join', { roomCode: room.code, guestName: 'host' });
  const before = await lateSubscriptions(b);
  const pub = publishing(room.id);
  t.after(() => pub.stop().catch(() => undefined));
  await sleep(300);

  const late = await connect(b.url);
  const got = record(late.socket);
  const started = Date.now();
  const joined = await ok(late.socket, 'room:join', { roomCode: room.code, guestName: 'late' });
  const waited = Date.now() - started;
  assert.ok(waited >= 1900, `the join waited ${waited} ms for its subscription (expected ~2 s)`);
  await sleep(DELAY_MS - waited + 1500); // past the confirmation, with live events after it
  const seqs = await pub.stop();
  const head = Math.max(...seqs);
  await until(() => missing(got, joined.seq, head).length === 0, 5000, 'every seq after the join').catch(() => undefined);
  assert.deepEqual(missing(got, joined.seq, head), [], `events after the join's state (seq ${joined.seq}) up to ${head} never reached the late joiner`);
  assert.ok(head - joined.seq > 60, `a stream ran through the whole wait (${head - joined.seq} events)`);
  assert.equal(await lateSubscriptions(b), before + 1);
});

test('a rejoin whose subscription confirms after its 2 s wait gets what was appended meanwhile', { timeout: 30_000 }, async (t) => {
  const room = await createRoomHttp(a.url);
  const first = await connect(a.url);
  const joined = await ok(first.socket, 'room:join', { roomCode: room.code, guestName: 'mover' });
  const before = await lateSubscriptions(b);
  const pub = publishing(room.id);
  t.after(() => pub.stop().catch(() => undefined));
  await sleep(300);
  const gotA = record(first.socket);
  await sleep(200);
  first.socket.io.engine.close(); // a transport close: the seat stays for the grace period
  const lastSeq = Math.max(joined.seq, ...gotA.filter((e) => e.name === 'room:event').map((e) => e.payload.seq as number));

  const back = await connect(b.url, { auth: { clientId: first.session.clientId, sessionToken: first.session.sessionToken } });
  const got = record(back.socket);
  const res = await ok(back.socket, 'room:rejoin', { roomId: room.id, lastSeq });
  assert.equal(res.recovered, true);
  await sleep(DELAY_MS + 1000);
  const seqs = await pub.stop();
  const head = Math.max(...seqs);
  await until(() => missing(got, lastSeq, head).length === 0, 5000, 'every seq after the position').catch(() => undefined);
  assert.deepEqual(missing(got, lastSeq, head), [], `events after the rejoin's position (seq ${lastSeq}) up to ${head} never reached the rejoined client`);
  assert.equal(await lateSubscriptions(b), before + 1);
});

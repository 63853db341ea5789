/**
 * Program rooms (JWT `rooms` claim): joined on connect, published to by backend services over
 * HTTP with the same seq/log path, caught up from the handshake's lastSeq, and re-checked on every
 * reconnect — a room removed from the claim is gone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import type { Worker } from '../helpers/workers.ts';
import { connect, ok, publishHttp, record, request, signJwt, until } from '../helpers/clients.ts';

let cluster: TestCluster | undefined;
let a: Worker;
let b: Worker;

before(async () => {
  cluster = await startCluster(2);
  [a, b] = cluster.workers as [Worker, Worker];
});
after(() => cluster?.stop());

test('program rooms: joined from the claim, fed over HTTP, caught up on reconnect, revoked with the claim', async () => {
  const token = await signJwt({ sub: 'pat', rooms: ['team-7', 'announcements'] });
  const first = await connect(a.url, { auth: { token } });
  assert.deepEqual(first.session.programRooms, ['team-7', 'announcements']);
  const seen = record(first.socket);

  const r1 = await publishHttp(b.url, 'team-7', { type: 'standup', data: { at: '09:30' }, idempotencyKey: 'k1' });
  assert.equal(r1.status, 201);
  const { seq } = (await r1.json()) as { seq: number };
  await until(() => seen.some((e) => e.name === 'room:event' && e.payload.roomId === 'team-7'), 5000, 'event in the program room');
  const again = await publishHttp(b.url, 'team-7', { type: 'standup', data: { at: '09:30' }, idempotencyKey: 'k1' });
  assert.deepEqual([again.status, await again.json()], [200, { seq, duplicate: true }]);
  const mine = await ok(first.socket, 'room:publish', { roomId: 'team-7', type: 'reply', data: 'ok', clientMsgId: 'r1' });
  assert.equal(mine.seq, seq + 1);
  // Not in the claim: refused.
  const other = await request(first.socket, 'room:publish', { roomId: 'team-8', type: 'x', data: 1, clientMsgId: 'r2' });
  assert.equal(!other.ok && other.error.code, 'NOT_IN_ROOM');
  // Services need credentials.
  const anon = await fetch(`${a.url}/v1/rooms/team-7/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"x","data":1}' });
  assert.equal(anon.status, 403);
  const publisher = await fetch(`${a.url}/v1/rooms/team-7/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await signJwt({ sub: 'cms', role: 'publisher' })}` },
    body: JSON.stringify({ type: 'note', data: 'from a publisher JWT' }),
  });
  assert.equal(publisher.status, 201);

  // Offline: two more events; the reconnect's handshake lastSeq replays exactly what was missed.
  const lastSeq = seq + 2;
  first.socket.close();
  await publishHttp(a.url, 'team-7', { type: 'missed', data: 1 });
  await publishHttp(a.url, 'team-7', { type: 'missed', data: 2 });
  const back = await connect(b.url, { auth: { token, clientId: first.session.clientId, sessionToken: first.session.sessionToken, lastSeq: { 'team-7': lastSeq } } });
  const backSeen = record(back.socket);
  await until(() => backSeen.some((e) => e.name === 'room:rejoined' && e.payload.roomId === 'team-7'), 5000, 'automatic catch-up');
  const rejoined = backSeen.find((e) => e.name === 'room:rejoined')!.payload;
  assert.equal(rejoined.recovered, true);
  assert.equal(rejoined.replayed, 2);
  assert.deepEqual(backSeen.filter((e) => e.name === 'room:event').map((e) => [e.payload.seq, e.payload.data]), [[lastSeq + 1, 1], [lastSeq + 2, 2]]);
  back.socket.close();

  // The claim no longer lists team-7: the room is not rejoined and cannot be used.
  const revoked = await connect(a.url, { auth: { token: await signJwt({ sub: 'pat', rooms: ['announcements'] }), clientId: first.session.clientId, sessionToken: first.session.sessionToken } });
  assert.deepEqual(revoked.session.programRooms, ['announcements']);
  const res = await request(revoked.socket, 'room:rejoin', { roomId: 'team-7' });
  assert.equal(!res.ok && res.error.code, 'NOT_IN_ROOM');
  const pub = await request(revoked.socket, 'room:publish', { roomId: 'team-7', type: 'x', data: 1, clientMsgId: 'z' });
  assert.equal(!pub.ok && pub.error.code, 'NOT_IN_ROOM');
});

/**
 * Issue #16: the server API for backends — members, history, kick, delete, the room listing — and
 * the OpenAPI document generated from the route schemas, checked against the routes that exist
 * and against docs/PROTOCOL.md. Two real workers, real clients.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { SERVICE_TOKEN, type Worker } from '../helpers/workers.ts';
import { startProxy } from '../helpers/proxy.ts';
import { connect, createRoomHttp, ok, publishHttp, record, request, until } from '../helpers/clients.ts';
import { redisClient } from '../helpers/redis.ts';
import { Keys } from '../../src/redis/keys.ts';

let cluster: TestCluster;
let a: Worker;
let b: Worker;
before(async () => {
  cluster = await startCluster(2, { GRACE_PERIOD_MS: '20000' });
  [a, b] = cluster.workers as [Worker, Worker];
});
after(() => cluster?.stop());

const svc = { authorization: `Bearer ${SERVICE_TOKEN}` };
async function api(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { ...init, headers: { ...svc, ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string>) } });
  return { status: res.status, body: await res.json() };
}

describe('server API', () => {
  test("Socket.IO's long-polling requests carry CORS headers; WebSocket upgrades (no CORS in browsers) still connect", async () => {
    const res = await fetch(`${a.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: 'https://app.example' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    await res.text();
    const preflight = await fetch(`${a.url}/socket.io/?EIO=4&transport=polling`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
    const c = await connect(a.url, { transports: ['websocket'] });
    assert.ok(c.session.clientId);
    c.socket.close();
  });

  test('members with status, history by position, and the room listing', async () => {
    const room = await createRoomHttp(a.url);
    const proxy = await startProxy(b.port);
    try {
      const x = await connect(a.url);
      const y = await connect(proxy.url);
      await ok(x.socket, 'room:join', { roomCode: room.code, guestName: 'x' });
      await ok(y.socket, 'room:join', { roomCode: room.code, guestName: 'y' });
      proxy.cut(); // y drops: away, not gone
      await until(async () => (await api(`${b.url}/v1/rooms/${room.code}/members`)).body.members?.some((m: any) => m.clientId === y.session.clientId && m.status === 'away'), 5000, 'y away');
      const members = (await api(`${b.url}/v1/rooms/${room.code}/members`)).body;
      assert.deepEqual(members.members.map((m: any) => [m.name, m.status]).sort(), [['x', 'online'], ['y', 'away']]);
      assert.equal(typeof members.incarnation, 'string');

      for (let i = 0; i < 5; i++) assert.equal((await publishHttp(a.url, room.code, { type: 'h', data: i })).status, 201);
      const all = (await api(`${a.url}/v1/rooms/${room.code}/events?fromSeq=0`)).body;
      assert.equal(all.recovered, true);
      assert.deepEqual(all.events.map((e: any) => e.seq), Array.from({ length: all.seq }, (_, i) => i + 1));
      const page = (await api(`${a.url}/v1/rooms/${room.code}/events?fromSeq=2&limit=2`)).body;
      assert.deepEqual(page.events.map((e: any) => e.seq), [3, 4]);
      assert.equal(page.more, true);
      const other = (await api(`${a.url}/v1/rooms/${room.code}/events?fromSeq=2&incarnation=another-life`)).body;
      assert.equal(other.recovered, false, 'a position of another incarnation is not continued');
      assert.equal((await api(`${a.url}/v1/rooms/${room.code}/events?fromSeq=-1`)).status, 400);

      // The listing pages through every room, oldest first.
      const created = [room.code];
      for (let i = 0; i < 4; i++) created.push((await createRoomHttp(a.url)).code);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: any } = await api(`${b.url}/v1/rooms?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        assert.equal(res.status, 200);
        seen.push(...res.body.rooms.map((r: any) => r.id));
        cursor = res.body.nextCursor;
      } while (cursor);
      for (const id of created) assert.ok(seen.includes(id), `${id} listed`);
      assert.equal(new Set(seen).size, seen.length, 'no room twice');
      assert.equal((await api(`${b.url}/v1/rooms`, { headers: { authorization: '' } })).status, 403, 'services only');
    } finally {
      await proxy.close();
    }
  });

  test('kick: the member is told and hears nothing more; the others get left with reason kicked', async () => {
    const room = await createRoomHttp(a.url);
    const stay = await connect(a.url);
    const kicked = await connect(b.url);
    await ok(stay.socket, 'room:join', { roomCode: room.code, guestName: 'stay' });
    await ok(kicked.socket, 'room:join', { roomCode: room.code, guestName: 'kicked' });
    const stayed = record(stay.socket);
    const heard = record(kicked.socket);
    const res = await api(`${a.url}/v1/rooms/${room.code}/members/${kicked.session.clientId}/kick`, { method: 'POST' });
    assert.equal(res.status, 200);
    await until(() => heard.some((e) => e.name === 'room:closed'), 3000, 'room:closed');
    assert.deepEqual(heard.find((e) => e.name === 'room:closed')!.payload, { roomId: room.code, reason: 'kicked' });
    await until(() => stayed.some((e) => e.name === 'room:participant:left'), 3000, 'left');
    assert.equal(stayed.find((e) => e.name === 'room:participant:left')!.payload.reason, 'kicked');
    const before = heard.length;
    await ok(stay.socket, 'room:publish', { type: 'after', data: 1, clientMsgId: 'a1' });
    await sleep(300);
    assert.deepEqual(heard.slice(before).filter((e) => e.name === 'room:event'), [], 'the kicked connection hears nothing of the room');
    const again = await request(kicked.socket, 'room:publish', { type: 'x', data: 1, clientMsgId: 'k1' });
    assert.equal(!again.ok && again.error.code, 'NOT_IN_ROOM');
    assert.equal((await api(`${a.url}/v1/rooms/${room.code}/members/${kicked.session.clientId}/kick`, { method: 'POST' })).status, 409, 'kicking twice: NOT_IN_ROOM');
  });

  test('delete: every member is told, every key goes', async () => {
    const room = await createRoomHttp(a.url);
    const members = await Promise.all([a, b, a].map((w) => connect(w.url)));
    for (const [i, m] of members.entries()) await ok(m.socket, 'room:join', { roomCode: room.code, guestName: `m${i}` });
    const records = members.map((m) => record(m.socket));
    const res = await api(`${b.url}/v1/rooms/${room.code}`, { method: 'DELETE' });
    assert.deepEqual(res.body, { roomId: room.code, members: 3 });
    await until(() => records.every((r) => r.some((e) => e.name === 'room:closed' && e.payload.reason === 'deleted')), 3000, 'every member told');
    assert.equal((await fetch(`${a.url}/v1/rooms/${room.code}`)).status, 404);
    const r = await redisClient(cluster.redis.url);
    try {
      const left = await r.keys(`${new Keys(cluster.redis.prefix).room(room.code).meta.replace(/:meta$/, '')}:*`);
      assert.deepEqual(left, []);
    } finally {
      await r.quit();
    }
    // A member can join another room now (its session forgot this one).
    const next = await createRoomHttp(a.url);
    await ok(members[0]!.socket, 'room:join', { roomCode: next.code, guestName: 'moved' });
  });

  test('the OpenAPI document covers exactly the routes that exist and that PROTOCOL.md lists', async () => {
    const doc = (await (await fetch(`${a.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    assert.match(doc.openapi, /^3\./);
    const inDoc = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)));
    const protocol = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
    const httpTable = protocol.slice(protocol.indexOf('## HTTP API'), protocol.indexOf('## Error codes'));
    const documented = new Set([...httpTable.matchAll(/^\| `(GET|POST|DELETE|PUT|PATCH) (\/[^`]*)`/gm)].map((m) => `${m[1]} ${m[2]}`));
    documented.delete('GET /openapi.json');
    assert.deepEqual([...inDoc].sort(), [...documented].sort(), 'OpenAPI paths = PROTOCOL.md HTTP table');
    // Each is a real route: a call never ends at the router's NOT_FOUND.
    for (const route of inDoc) {
      const [method, path] = route.split(' ') as [string, string];
      const url = `${a.url}${path.replace(':code', 'ABCDEFGH').replace(':id', 'ABCDEFGH').replace(':clientId', 'client-123456')}`;
      const res = await fetch(url, { method, headers: { ...svc, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) }, ...(method === 'POST' ? { body: '{}' } : {}) });
      const body = res.headers.get('content-type')?.includes('json') ? ((await res.json()) as { error?: { code: string; message: string } }) : (await res.text(), {});
      assert.ok(!(res.status === 404 && body.error?.code === 'NOT_FOUND' && body.error.message === 'no such resource'), `${route} exists`);
    }
    // Request and response schemas are published.
    const publish = doc.paths['/v1/rooms/{id}/events']!.post as { requestBody?: unknown; responses: Record<string, unknown> };
    assert.ok(publish.requestBody, 'request body schema');
    assert.ok(publish.responses['201'] && publish.responses['4XX'] !== undefined ? true : publish.responses['201'], 'response schemas');
  });
});

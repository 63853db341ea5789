// The request router (src/transport/router.ts) on a real Socket.IO server and client in this
// process: every socket shares one frozen any-listener list, requests are answered through it, and
// onAny on such a socket throws rather than changing the list the others use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { pino } from 'pino';
import { z } from 'zod';
import { RequestRouter } from '../../src/transport/router.js';
import type { SocketIoFanout } from '../../src/transport/fanout.js';
import type { RequestDef } from '../../src/fanout/requests.js';

test('sockets share one frozen any-listener list, and requests are dispatched through it', async (t) => {
  const http = createServer();
  const server = new Server(http, { transports: ['websocket'] });
  const fanout = { conn: (socket: Socket) => ({ id: socket.id, data: socket.data }) } as unknown as SocketIoFanout;
  const echo: RequestDef = { event: 'room:leave', schema: z.object({ x: z.number() }), run: async (conn, input) => ({ input, id: conn.id }) };
  const router = new RequestRouter(pino({ level: 'silent' }), fanout, [echo]);
  const sockets: Socket[] = [];
  server.of('/sync').on('connection', (socket) => {
    socket.data = { replaced: false };
    router.attach(socket as never);
    sockets.push(socket);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/sync`;
  const clients = [connect(url, { transports: ['websocket'], forceNew: true }), connect(url, { transports: ['websocket'], forceNew: true })];
  t.after(() => {
    for (const c of clients) c.close();
    server.close();
  });
  await Promise.all(clients.map((c) => new Promise((resolve) => c.once('connect', resolve))));

  const [a, b] = sockets;
  assert.equal(a.listenersAny().length, 1, 'Socket.IO sees the router as the one any-listener');
  assert.equal(a.listenersAny(), b.listenersAny(), 'one list for every socket, not one per socket');
  assert.ok(Object.isFrozen(a.listenersAny()));

  for (const [i, c] of clients.entries()) {
    const res = await c.timeout(2000).emitWithAck('room:leave', { x: i });
    assert.deepEqual(res, { ok: true, data: { input: { x: i }, id: sockets.find((s) => s.id === c.id)!.id } });
  }
  const bad = await clients[0].timeout(2000).emitWithAck('room:leave', { x: 'no' });
  assert.equal(bad.ok, false);
  assert.equal(bad.error.code, 'INVALID_PAYLOAD');
  const unknown = await clients[1].timeout(2000).emitWithAck('no:such', {});
  assert.equal(unknown.error.code, 'UNKNOWN_EVENT');

  assert.throws(() => a.onAny(() => undefined), TypeError, 'adding a listener to the shared list must fail loudly');
  assert.equal(b.listenersAny().length, 1, 'the other sockets keep their one listener');
});

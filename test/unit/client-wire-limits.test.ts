/**
 * Issue #12, SDK side, against an in-process fake /sync server (socket.io, no Redis): messages
 * over the size limit are refused locally (PAYLOAD_TOO_LARGE) instead of getting the connection
 * killed; a connection the server closes over a message's size (WebSocket 1009, polling 413) is
 * surfaced with PAYLOAD_TOO_LARGE and the message is not resent into the same wall; refusals
 * answered by the ack alone (no room:error) and UNKNOWN_EVENT acks reach the caller at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Server, type Socket } from 'socket.io';
import { TetherClient, ClientError } from '../../packages/client/src/index.ts';
import type { TetherClientOptions } from '../../packages/client/src/index.ts';
import { state } from '../helpers/scripted-room.ts';

const SERVER_LIMIT = 3000; // the fake server's maxHttpBufferSize (MAX_PAYLOAD_BYTES)
const KNOWN = new Set(['room:join', 'room:rejoin', 'room:publish', 'room:signal', 'room:leave']);
const httpServer = createServer();
const io = new Server(httpServer, { maxHttpBufferSize: SERVER_LIMIT });
let url = '';
const received: { event: string; bytes: number }[] = [];

before(async () => {
  io.of('/sync').on('connection', (socket: Socket) => {
    const clientId = (socket.handshake.auth as { clientId: string }).clientId;
    let seq = 0;
    const ok = (data: unknown) => ({ ok: true, data });
    const refuse = (code: string) => ({ ok: false, error: { code, message: `refused: ${code}` } });
    socket.onAny((event: string, ...args: unknown[]) => {
      received.push({ event, bytes: JSON.stringify(args[0] ?? null).length });
      const ack = args.at(-1);
      if (typeof ack === 'function' && !KNOWN.has(event)) ack(refuse('UNKNOWN_EVENT'));
    });
    socket.on('room:join', (p: { roomCode: string }, ack) => ack(ok({ ...state(0), room: { ...state(0).room, id: p.roomCode, code: p.roomCode }, self: null })));
    socket.on('room:rejoin', (p: { roomId: string; lastSeq?: number }, ack) => ack(ok({ roomId: p.roomId, recovered: true, replayed: 0, more: false, seq: p.lastSeq ?? 0, incarnation: 'inc-A' })));
    // Refusals are answered once, by the ack: no room:error beside it (issue #12).
    socket.on('room:publish', (p: { type: string }, ack) => ack(p.type === 'forbidden' ? refuse('UNAUTHORIZED') : ok({ seq: ++seq, duplicate: false })));
    socket.on('room:signal', (p: { type: string }, ack) => ack(p.type === 'forbidden' ? refuse('RATE_LIMITED') : ok({})));
    socket.emit('session', { clientId, userId: null, epoch: 1, nodeId: 'fake', serverTime: Date.now(), programRooms: [] });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});

const opened = new Set<TetherClient>();

after(async () => {
  for (const c of opened) c.close(); // also when an assertion failed: a reconnecting client keeps the process alive
  await io.close();
});

function client(opts: Partial<TetherClientOptions> = {}) {
  const c = new TetherClient({ url, clockSync: false, requestTimeoutMs: 3000, reconnect: { baseMs: 20, maxMs: 50 }, ...opts });
  opened.add(c);
  const errors: string[] = [];
  const disconnects: { reason: string; code?: string }[] = [];
  c.on('error', (e) => void errors.push(e instanceof ClientError ? e.code : e.message));
  c.on('disconnected', (d) => void disconnects.push(d));
  return { c, errors, disconnects };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ClientError, String(err));
    return err.code;
  }
  return 'resolved';
}

test('over maxPayloadBytes: publish fails at once, signal and request reject, nothing is sent, the connection stays', async () => {
  const { c, disconnects } = client({ maxPayloadBytes: 2000 });
  const room = await c.join('ROOMAAAA');
  const sentBefore = received.length;
  const big = room.publish('blob', { text: 'x'.repeat(2500) });
  assert.equal(big.status, 'failed', 'refused synchronously');
  assert.equal(big.error?.code, 'PAYLOAD_TOO_LARGE');
  assert.equal(big.error?.retryable, false);
  assert.equal(room.pending.length, 0, 'never queued');
  assert.equal(await codeOf(big.sent()), 'PAYLOAD_TOO_LARGE');
  // 1000 characters, 3000 bytes: the limit is in bytes.
  assert.equal(room.publish('blob', { text: '€'.repeat(1000) }).error?.code, 'PAYLOAD_TOO_LARGE');
  assert.equal(await codeOf(room.signal('cursor', 'y'.repeat(2500))), 'PAYLOAD_TOO_LARGE');
  assert.equal(await codeOf(c.request('user:message', { toUserId: 'u', type: 't', data: 'z'.repeat(2500) })), 'PAYLOAD_TOO_LARGE');
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  assert.equal(room.publish('loop', cyclic).error?.code, 'INVALID_PAYLOAD', 'not serializable: refused, not retried');
  assert.deepEqual(received.slice(sentBefore), [], 'nothing reached the server');
  const small = await room.publish('note', { text: 'fits' }).sent();
  assert.equal(small.seq, 1);
  assert.deepEqual(disconnects, []);
  assert.equal(c.status.state, 'connected');
  c.close();
});

for (const transport of ['websocket', 'polling'] as const) {
  test(`the server closes the ${transport} over a message's size: PAYLOAD_TOO_LARGE, and the message is not resent into the same wall`, { timeout: 15_000 }, async () => {
    // The SDK believes the default 64 KiB; this server takes 3000 bytes.
    const { c, errors, disconnects } = client({ transports: [transport] });
    const room = await c.join('ROOMBBBB');
    const big = room.publish('blob', { text: 'x'.repeat(5000) });
    assert.equal(big.status, 'pending', 'under the configured limit: sent');
    assert.equal(await codeOf(big.sent()), 'PAYLOAD_TOO_LARGE');
    assert.deepEqual(disconnects, [{ reason: transport === 'websocket' ? 'transport close' : 'transport error', code: 'PAYLOAD_TOO_LARGE' }]);
    assert.ok(errors.includes('PAYLOAD_TOO_LARGE'), `error event: ${errors.join(',')}`);
    await sleep(300);
    assert.equal(disconnects.length, 1, 'one kill, not a loop');
    assert.equal(c.status.state, 'connected');
    assert.equal(room.status, 'live');
    const after = await room.publish('note', { text: 'small' }).sent();
    assert.ok(after.seq >= 1);
    c.close();
  });
}

test('refusals come by the ack alone: the SDK fails the request at once (it never waits for room:error)', async () => {
  const { c } = client();
  const room = await c.join('ROOMCCCC');
  const t0 = Date.now();
  const m = room.publish('forbidden', {});
  assert.equal(await codeOf(m.sent()), 'UNAUTHORIZED');
  assert.equal(await codeOf(room.signal('forbidden', {})), 'RATE_LIMITED');
  assert.ok(Date.now() - t0 < 2000, 'well before the request timeout');
  c.close();
});

test('an event the server does not know is answered UNKNOWN_EVENT, not retryable', async () => {
  const { c } = client();
  await c.connect();
  try {
    await c.request('no:such:event' as never, {} as never);
    assert.fail('expected a refusal');
  } catch (err) {
    assert.ok(err instanceof ClientError);
    assert.equal(err.code, 'UNKNOWN_EVENT');
    assert.equal(err.retryable, false);
  }
  c.close();
});

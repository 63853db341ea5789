// Shared skeleton of the baseline apps: what teams write on public packages only. Same wire names
// as Tether (namespace /sync, room:join, room:rejoin, room:publish, room:event, HTTP POST /v1/rooms
// and POST /v1/rooms/:id/events) so one load generator drives every target. What a (re)join and a
// disconnect announce, and what a join answers, is the app's `presence` (naivePresence below, or
// the careful app's batched one in careful.mjs).
import { createServer } from 'node:http';
import { randomInt } from 'node:crypto';

const ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const newCode = () => Array.from({ length: 8 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
export const socketRoom = (id) => `room:${id}`;

export function env() {
  return {
    port: Number(process.env.PORT ?? 3000),
    host: process.env.HOST ?? '127.0.0.1',
    // The same accept queue as Tether's LISTEN_BACKLOG default: Node's 511 overflows in a
    // reconnect storm, and the comparison is about the servers, not a kernel queue.
    backlog: Number(process.env.LISTEN_BACKLOG ?? 4096),
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: process.env.KEY_PREFIX ?? 'baseline',
    nodeId: process.env.NODE_ID ?? `b${process.pid}`,
  };
}

function body(req) {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (d) => (s += d));
    req.on('end', () => {
      try {
        resolve(s ? JSON.parse(s) : {});
      } catch {
        resolve(null);
      }
    });
  });
}

/** HTTP routes; `publish(roomId, type, data)` broadcasts and resolves with a seq (or 0). */
export function createHttp(publish) {
  return createServer(async (req, res) => {
    const send = (status, obj) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    const url = req.url ?? '/';
    if (req.method === 'GET' && (url === '/readyz' || url === '/healthz')) return send(200, { ok: true });
    if (req.method === 'POST' && url === '/v1/rooms') {
      if (!req.headers.authorization) return send(401, { error: 'UNAUTHORIZED' });
      await body(req);
      const code = newCode();
      return send(201, { id: code, code });
    }
    const m = /^\/v1\/rooms\/([A-Za-z0-9_-]+)\/events$/.exec(url);
    if (req.method === 'POST' && m) {
      if (!req.headers.authorization) return send(401, { error: 'UNAUTHORIZED' });
      const b = await body(req);
      if (!b || typeof b.type !== 'string') return send(400, { error: 'INVALID_PAYLOAD' });
      const seq = await publish(m[1], b.type, b.data ?? null, 'service:http');
      return send(202, { seq });
    }
    send(404, { error: 'NOT_FOUND' });
  });
}

/**
 * The naive app (plain and csr): every (re)join is announced to the room at once, every
 * disconnect too, and a join is answered with an empty member list. The empty list is intended:
 * the naive baseline is the floor of what a room server costs (it keeps no member state at all);
 * the careful baseline answers with the real list.
 */
export function naivePresence(nsp) {
  const participant = (socket) => ({ clientId: socket.data.clientId, name: socket.data.name, status: 'online' });
  return {
    async join(socket, roomId) {
      socket.to(socketRoom(roomId)).emit('room:participant:joined', { roomId, seq: 0, participant: participant(socket) });
      return [];
    },
    async left(socket, roomId) {
      nsp.to(socketRoom(roomId)).emit('room:participant:left', { roomId, seq: 0, clientId: socket.data.clientId, reason: 'disconnected' });
    },
  };
}

/** The room handlers every baseline shares; `presence` decides what a (re)join and a disconnect announce. */
export function registerHandlers(socket, publish, presence) {
  const join = async (roomId, ack) => {
    if (!roomId || typeof roomId !== 'string') return ack?.({ ok: false, error: { code: 'INVALID_PAYLOAD', message: 'roomCode required' } });
    socket.data.roomId = roomId;
    await socket.join(socketRoom(roomId));
    let participants;
    try {
      participants = await presence.join(socket, roomId);
    } catch (err) {
      return ack?.({ ok: false, error: { code: 'INTERNAL_ERROR', message: String(err?.message ?? err) } });
    }
    ack?.({ ok: true, data: { seq: 0, participants, room: { id: roomId, code: roomId } } });
  };
  socket.on('room:join', (p, ack) => join(String(p?.roomCode ?? '').toUpperCase(), ack));
  socket.on('room:rejoin', (p, ack) => join(p?.roomId ?? p?.roomCode, (r) => ack?.(r.ok ? { ok: true, data: { roomId: p?.roomId, recovered: false, replayed: 0, more: false, seq: 0 } } : r)));
  socket.on('room:publish', async (p, ack) => {
    const roomId = socket.data.roomId;
    if (!roomId) return ack?.({ ok: false, error: { code: 'NOT_IN_ROOM' } });
    const seq = await publish(roomId, p?.type, p?.data ?? null, socket.data.clientId);
    ack?.({ ok: true, data: { seq, duplicate: false } });
  });
  socket.on('room:leave', async (_p, ack) => {
    const roomId = socket.data.roomId;
    socket.data.roomId = null;
    if (roomId) {
      await socket.leave(socketRoom(roomId));
      await presence.left(socket, roomId).catch(() => undefined);
    }
    ack?.({ ok: true, data: { roomId } });
  });
  socket.on('disconnect', () => {
    if (socket.data.roomId) presence.left(socket, socket.data.roomId).catch(() => undefined);
  });
}

export function onShutdown(close) {
  const go = () => {
    const hard = setTimeout(() => process.exit(1), 10_000);
    hard.unref();
    Promise.resolve(close()).finally(() => process.exit(0));
  };
  process.once('SIGTERM', go);
  process.once('SIGINT', go);
}

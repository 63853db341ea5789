// Baseline "csr": the naive app (common.mjs) on Socket.IO's own connection state recovery +
// @socket.io/redis-streams-adapter, every option at its default (maxDisconnectionDuration 2 min,
// stream MAXLEN ~10,000) unless the harness sets CSR_MAX_DISCONNECTION_MS (printed as an override).
// Sessions are persisted to Redis when a socket drops (transport close, ping timeout, server
// shutdown) and restored (rooms + missed packets) when the client reconnects in time, on any
// worker. A killed worker never persists its sessions.
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { createClient } from 'redis';
import { createHttp, env, naivePresence, onShutdown, registerHandlers, socketRoom } from './common.mjs';

const cfg = env();
const maxDisconnectionDuration = Number(process.env.CSR_MAX_DISCONNECTION_MS ?? 120_000);
const redis = createClient({ url: cfg.redisUrl });
redis.on('error', () => undefined);
await redis.connect();

let nsp;
const publish = async (roomId, type, data, from) => {
  nsp.to(socketRoom(roomId)).emit('room:event', { roomId, seq: 0, type, data, from, ts: Date.now() });
  return 0;
};
const http = createHttp(publish);
const io = new Server(http, {
  serveClient: false,
  connectionStateRecovery: { maxDisconnectionDuration, skipMiddlewares: true },
  adapter: createAdapter(redis, { streamName: `${cfg.prefix}-stream`, sessionKeyPrefix: `${cfg.prefix}-session:` }),
});
nsp = io.of('/sync');
const presence = naivePresence(nsp);
nsp.on('connection', (socket) => {
  if (!socket.recovered) {
    const clientId = socket.handshake.auth?.clientId ?? randomUUID();
    socket.data = { clientId, name: `guest-${clientId.slice(0, 6)}`, roomId: null };
  }
  // A recovered socket is back in its rooms with socket.data restored and missed packets sent.
  registerHandlers(socket, publish, presence);
  socket.emit('session', { clientId: socket.data.clientId, epoch: 1, nodeId: cfg.nodeId, serverTime: Date.now(), programRooms: [], recovered: socket.recovered });
});

// io.close() persists every session (an un-awaited SET each); the PING after them returns once
// Redis has processed them all, so the sessions survive the exit.
onShutdown(() => new Promise((resolve) => io.close(() => resolve())).then(() => redis.ping()));
http.listen({ port: cfg.port, host: cfg.host, backlog: cfg.backlog }, () => process.stdout.write(`csr baseline on ${cfg.host}:${cfg.port}\n`));

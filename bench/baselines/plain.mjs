// Baseline "plain": Socket.IO + @socket.io/redis-adapter, the naive app most tutorials lead to.
// Every (re)join broadcasts "joined" and every disconnect "left" to the room at once; a join is
// answered with an empty member list (no member state: the floor of what a room server costs);
// publishes are relayed as-is (no log, no seq: a client that was away simply misses what was sent
// meanwhile and is not told).
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { createHttp, env, naivePresence, onShutdown, registerHandlers, socketRoom } from './common.mjs';

const cfg = env();
const pub = createClient({ url: cfg.redisUrl });
const sub = pub.duplicate();
pub.on('error', () => undefined);
sub.on('error', () => undefined);
await Promise.all([pub.connect(), sub.connect()]);

let nsp;
const publish = async (roomId, type, data, from) => {
  nsp.to(socketRoom(roomId)).emit('room:event', { roomId, seq: 0, type, data, from, ts: Date.now() });
  return 0;
};
const http = createHttp(publish);
// Socket.IO's defaults (pingInterval 25 s, pingTimeout 20 s).
const io = new Server(http, { serveClient: false });
io.adapter(createAdapter(pub, sub, { key: `${cfg.prefix}-io` }));
nsp = io.of('/sync');
const presence = naivePresence(nsp);
nsp.on('connection', (socket) => {
  const clientId = socket.handshake.auth?.clientId ?? randomUUID();
  socket.data = { clientId, name: `guest-${clientId.slice(0, 6)}`, roomId: null };
  registerHandlers(socket, publish, presence);
  socket.emit('session', { clientId, epoch: 1, nodeId: cfg.nodeId, serverTime: Date.now(), programRooms: [] });
});

onShutdown(() => new Promise((resolve) => io.close(() => resolve())));
http.listen({ port: cfg.port, host: cfg.host, backlog: cfg.backlog }, () => process.stdout.write(`plain baseline on ${cfg.host}:${cfg.port}\n`));

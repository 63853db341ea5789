// Baseline "careful": what a careful team writes on Socket.IO + @socket.io/redis-adapter without
// Tether. Members live in one Redis hash per room (clientId → "<socketId>|<name>"), so a join is
// answered with the real member list from any worker; presence changes are batched per room and
// worker (one room:presence per PRESENCE_BATCH_MS window, default 1 s) instead of one broadcast
// per join; a disconnect removes the member only if it still belongs to that socket (a client that
// already rejoined elsewhere is not removed by its old socket's late disconnect). What it still
// lacks, like most apps: no event log (an away client misses what was sent meanwhile and is not
// told), and a SIGKILLed worker's members stay in the hash until they rejoin (no reaper).
import { randomUUID } from 'node:crypto';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { createHttp, env, onShutdown, registerHandlers, socketRoom } from './common.mjs';

const cfg = env();
const batchMs = Number(process.env.PRESENCE_BATCH_MS ?? 1000);
const pub = createClient({ url: cfg.redisUrl });
const sub = pub.duplicate();
pub.on('error', () => undefined);
sub.on('error', () => undefined);
await Promise.all([pub.connect(), sub.connect()]);

// Deletes the member only while the hash still holds this socket's entry.
const REMOVE_IF_OWNER = `local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '|' then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`;
const membersKey = (roomId) => `${cfg.prefix}:{${roomId}}:members`;

let nsp;
const publish = async (roomId, type, data, from) => {
  nsp.to(socketRoom(roomId)).emit('room:event', { roomId, seq: 0, type, data, from, ts: Date.now() });
  return 0;
};
const http = createHttp(publish);
const io = new Server(http, { serveClient: false });
io.adapter(createAdapter(pub, sub, { key: `${cfg.prefix}-io` }));
nsp = io.of('/sync');

/** One room:presence per room and window on this worker, with the last status of each client. */
class PresenceBatcher {
  pending = new Map(); // roomId → Map(clientId → { status, name })
  timers = new Map();

  add(roomId, clientId, status, name) {
    let m = this.pending.get(roomId);
    if (!m) this.pending.set(roomId, (m = new Map()));
    m.set(clientId, { status, name });
    if (!this.timers.has(roomId)) this.timers.set(roomId, setTimeout(() => this.flush(roomId), batchMs));
  }

  flush(roomId) {
    const m = this.pending.get(roomId);
    this.pending.delete(roomId);
    this.timers.delete(roomId);
    if (!m?.size) return;
    const joined = [];
    const left = [];
    for (const [clientId, { status, name }] of m) (status === 'online' ? joined : left).push({ clientId, name });
    nsp.to(socketRoom(roomId)).emit('room:presence', { roomId, seq: 0, joined, left });
  }

  flushAll() {
    for (const [roomId, t] of this.timers) {
      clearTimeout(t);
      this.flush(roomId);
    }
  }
}
const batcher = new PresenceBatcher();

const presence = {
  async join(socket, roomId) {
    const { clientId, name } = socket.data;
    const [, all] = await pub.multi().hSet(membersKey(roomId), clientId, `${socket.id}|${name}`).hGetAll(membersKey(roomId)).exec();
    batcher.add(roomId, clientId, 'online', name);
    return Object.entries(all).map(([id, v]) => ({ clientId: id, name: v.slice(v.indexOf('|') + 1), status: 'online' }));
  },
  async left(socket, roomId) {
    const { clientId, name } = socket.data;
    const removed = await pub.eval(REMOVE_IF_OWNER, { keys: [membersKey(roomId)], arguments: [clientId, socket.id] });
    if (removed) batcher.add(roomId, clientId, 'left', name);
  },
};

nsp.on('connection', (socket) => {
  const clientId = socket.handshake.auth?.clientId ?? randomUUID();
  socket.data = { clientId, name: `guest-${clientId.slice(0, 6)}`, roomId: null };
  registerHandlers(socket, publish, presence);
  socket.emit('session', { clientId, epoch: 1, nodeId: cfg.nodeId, serverTime: Date.now(), programRooms: [] });
});

onShutdown(async () => {
  await new Promise((resolve) => io.close(() => resolve()));
  // The disconnect handlers' scripts were sent before this PING: once it answers, their "left"
  // entries are in the batcher, and the last batches can go out.
  await pub.ping();
  batcher.flushAll();
  await pub.ping();
});
http.listen({ port: cfg.port, host: cfg.host, backlog: cfg.backlog }, () => process.stdout.write(`careful baseline on ${cfg.host}:${cfg.port}\n`));

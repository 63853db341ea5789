import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Config } from '../config/index.js';
import type { RedisConnections } from '../redis/client.js';
import type { TetherServer } from './types.js';

/**
 * The Socket.IO server and its adapter — the one place that decides how broadcasts cross workers.
 * Socket.IO's own connection state recovery stays off: it lives in one worker's memory and does
 * not survive a restart; Tether's catch-up log in Redis replaces it.
 */
export function createIo(httpServer: HttpServer, config: Config, redis: RedisConnections): TetherServer {
  const io: TetherServer = new Server(httpServer, {
    pingInterval: config.ws.pingInterval,
    pingTimeout: config.ws.pingTimeout,
    maxHttpBufferSize: config.ws.maxPayloadBytes,
    cors: { origin: config.corsOrigin, credentials: config.corsOrigin !== '*' },
    serveClient: false,
  });
  io.adapter(createAdapter(redis.adapterPub, redis.adapterSub, { key: `${config.redis.keyPrefix}-io`, requestsTimeout: 5000 }));
  return io;
}

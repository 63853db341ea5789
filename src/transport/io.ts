import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Config } from '../config/index.js';
import type { RedisCommands, RedisConnections } from '../redis/client.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { BroadcastMarks } from './marks.js';
import type { TetherServer } from './types.js';

/**
 * The Socket.IO server and its adapter — the one place that decides how broadcasts cross workers.
 * Socket.IO's own connection state recovery stays off: it lives in one worker's memory and does
 * not survive a restart; Tether's catch-up log in Redis replaces it.
 */
export function createIo(httpServer: HttpServer, config: Config, redis: RedisConnections, log: Logger, marks: BroadcastMarks): TetherServer {
  const io: TetherServer = new Server(httpServer, {
    pingInterval: config.ws.pingInterval,
    pingTimeout: config.ws.pingTimeout,
    maxHttpBufferSize: config.ws.maxPayloadBytes,
    cors: { origin: config.corsOrigin, credentials: config.corsOrigin !== '*' },
    serveClient: false,
  });
  io.adapter(
    createAdapter(guardPublishes(redis.adapterPub, log), redis.adapterSub, {
      // "-json": the channel changed with the parser, so a worker of an older version (msgpack)
      // never tries to decode these messages during a rolling deploy, nor these workers theirs.
      key: `${config.redis.keyPrefix}-io-json`,
      requestsTimeout: 5000,
      parser: jsonParser(marks),
    }),
  );
  return io;
}

/**
 * JSON between workers instead of the adapter's default msgpack (notepack.io): app data must arrive
 * exactly as sent, and notepack does not carry all of JSON — a float above 2^64 such as 1e308 is
 * encoded as an overflowing integer (arrives as 0), a lone UTF-16 surrogate is mangled into another
 * character. Tether never broadcasts binary, which is what msgpack would be for. A message that
 * does not parse is ignored rather than thrown inside the subscriber. Every broadcast passes here
 * (this worker's own when encoded, the others' when decoded): `marks` notes the seqs.
 */
function jsonParser(marks: BroadcastMarks) {
  return {
    encode: (msg: unknown) => {
      marks.observe(msg);
      return JSON.stringify(msg);
    },
    decode: (msg: Buffer | string) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(typeof msg === 'string' ? msg : msg.toString('utf8')) as unknown;
      } catch {
        return [];
      }
      marks.observe(parsed);
      return parsed;
    },
  };
}

/**
 * The adapter publishes fire-and-forget: while Redis is down each broadcast's rejected promise
 * would surface as an unhandled rejection (dozens of log lines per restart, and a crash under
 * --unhandled-rejections=strict). The broadcast is lost either way — its event is in the room's
 * log, and room heads let clients fill it — so the failure is counted, and logged once per outage.
 */
function guardPublishes(client: RedisCommands, log: Logger): RedisCommands {
  const publish = client.publish.bind(client);
  let failing = false;
  (client as unknown as { publish: (...a: Parameters<typeof publish>) => Promise<number> }).publish = (...args) =>
    publish(...args).then(
      (n) => {
        failing = false;
        return n;
      },
      (err: unknown) => {
        metrics.adapterPublishErrors.inc();
        if (!failing) log.warn({ err: (err as Error).message }, 'adapter publish failed: cross-worker broadcasts are being lost until Redis is back (clients fill from room heads)');
        failing = true;
        return 0;
      },
    );
  return client;
}

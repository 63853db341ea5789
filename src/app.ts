import { z } from 'zod';
import type { AddressInfo } from 'node:net';
import { requireRedisUrl, type Config } from './config/index.js';
import { createLogger, type Logger } from './observability/logger.js';
import { collectDefaultMetrics, metrics } from './observability/metrics.js';
import { NAMESPACE } from './protocol/events.js';
import { connectRedis, type RedisConnections } from './redis/client.js';
import { Keys } from './redis/keys.js';
import { Scripts } from './redis/scripts.js';
import { CatchupService } from './catchup/service.js';
import { eventRequests } from './events/handlers.js';
import { EventService } from './events/service.js';
import { inboxRequests } from './inbox/handlers.js';
import { registerInboxRoutes } from './inbox/routes.js';
import { InboxService } from './inbox/service.js';
import { Jobs } from './jobs/queues.js';
import { playbackRequests } from './playback/handlers.js';
import { PlaybackService } from './playback/service.js';
import { FLUSH_QUEUE, PresenceService } from './presence/service.js';
import { roomRequests } from './rooms/handlers.js';
import { RoomService } from './rooms/service.js';
import { RoomHeads } from './rooms/heads.js';
import { sessionRequests } from './sessions/handlers.js';
import { NodeLiveness, REAP_EVERY_MS, REAP_QUEUE, reapDeadNodes } from './sessions/reaper.js';
import { EVICT_QUEUE, SessionService } from './sessions/service.js';
import { installMiddleware } from './transport/connection.js';
import { Drain, gateHandshakes } from './transport/drain.js';
import { RequestRouter } from './transport/handle.js';
import { createHttp, registerRoutes } from './transport/http.js';
import { createIo } from './transport/io.js';
import { addressResolver } from './transport/address.js';
import { Limits } from './limits/limits.js';
import type { TetherServer } from './transport/types.js';

export interface App {
  readonly config: Config;
  readonly log: Logger;
  readonly io: TetherServer;
  /** Binds HOST:PORT (a single worker), or nothing when a cluster primary hands over connections. */
  listen(): Promise<number>;
  /** Drains and releases everything, in the reverse order of start. Idempotent. */
  stop(): Promise<void>;
}

const REDIS_PROBE_TIMEOUT_MS = 1000;

/** The composition root: builds every part of a worker, wires them, and knows how to unwind them. */
export async function createApp(config: Config): Promise<App> {
  const log = createLogger({ level: config.logLevel, nodeId: config.nodeId });
  collectDefaultMetrics();
  const url = requireRedisUrl(config);

  const redis: RedisConnections = await connectRedis(
    { commands: url, adapter: config.redis.adapterUrl ?? url, queue: config.redis.queueUrl ?? url },
    log,
  );
  const scripts = new Scripts(redis.commands);
  await scripts.load();
  const keys = new Keys(config.redis.keyPrefix);
  const jobs = new Jobs(redis.queue, keys.bullPrefix(), log);

  let drain: Drain | undefined;
  const isReady = async () => {
    if (drain?.active) return { ready: false, reason: 'draining' };
    try {
      await Promise.race([
        redis.commands.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), REDIS_PROBE_TIMEOUT_MS).unref()),
      ]);
      metrics.redisUp.set(1);
      return { ready: true };
    } catch (err) {
      metrics.redisUp.set(0);
      return { ready: false, reason: `redis: ${(err as Error).message}` };
    }
  };

  const http = createHttp(config, log);
  const io = createIo(http.server, config, redis, log);
  const nsp = io.of(NAMESPACE);
  drain = new Drain(config, nsp, log);
  gateHandshakes(http.server, drain);

  // Liveness first: sockets are indexed under its instance from the first handshake on.
  const liveness = new NodeLiveness(config.nodeId, redis.commands, keys, log, (oldInstance) => {
    // This process was (or may have been) declared dead while Redis was unreachable: the clients
    // of the old instance reconnect and rejoin rather than sit on seats the reaper marked away.
    for (const socket of nsp.sockets.values()) if (socket.data.nodeInstance === oldInstance) socket.conn.close();
  });

  const limits = new Limits(config, redis.commands, log);
  const addressOf = addressResolver(config.limits.trustProxy);
  const rooms = new RoomService(config, redis.commands, scripts, keys, nsp);
  const events = new EventService(config, scripts, keys, nsp);
  const catchup = new CatchupService(config, scripts, keys);
  const presence = new PresenceService(config, redis.commands, scripts, keys, jobs, nsp, log);
  const sessions = new SessionService(config, redis.commands, scripts, keys, jobs, nsp, rooms, presence, catchup, liveness, log);
  const playback = new PlaybackService(config, scripts, keys, jobs, nsp, log);
  const inbox = new InboxService(config, scripts, keys, nsp, log);

  nsp.on('session:replace', ({ socketId, clientId }) => sessions.replaceLocal(socketId, clientId));
  const requests = new RequestRouter(log, [
    ...roomRequests(rooms, sessions, catchup, limits, addressOf),
    ...sessionRequests(sessions),
    ...eventRequests(config, events, catchup, limits),
    ...playbackRequests(playback),
    ...inboxRequests(config, inbox),
  ]);
  installMiddleware(nsp, {
    config,
    log,
    rooms,
    sessions,
    requests,
    limits,
    addressOf,
    isDraining: () => drain!.active,
    nodeInstance: () => liveness.instance,
    onConnected: [(socket) => inbox.deliverPending(socket)],
    onDisconnected: [(socket) => inbox.disconnected(socket)],
  });


  registerRoutes(http, { config, log, rooms, events, limits, isReady, beforeScrape: () => jobs.sampleDepths(), extraRoutes: [(app, auth) => registerInboxRoutes(app, auth, inbox)] });

  jobs.work({
    queue: EVICT_QUEUE,
    schema: z.object({ v: z.literal(1), clientId: z.string(), roomId: z.string(), epoch: z.number().int() }),
    concurrency: 50,
    process: (job) => sessions.evict(job),
  });
  jobs.work({
    queue: FLUSH_QUEUE,
    schema: z.object({ v: z.literal(1), roomId: z.string(), generation: z.number().int() }),
    concurrency: 50,
    process: async (job) => ((await presence.flush(job.roomId)) ? 'done' : 'stale'),
  });
  jobs.work(playback.syncJobKind());

  jobs.work({
    queue: REAP_QUEUE,
    schema: z.object({ v: z.literal(1) }),
    concurrency: 1,
    process: () => reapDeadNodes(redis.commands, keys, sessions, [(s) => inbox.reaped(s)], log),
  });
  await jobs.every(REAP_QUEUE, 'reaper', REAP_EVERY_MS, { v: 1 });
  await liveness.start();
  const heads = new RoomHeads(config, redis.commands, keys, nsp, log);
  heads.start();

  await http.ready();
  await isReady();

  let stopping: Promise<void> | undefined;
  return {
    config,
    log,
    io,
    async listen() {
      await http.listen({ port: config.port, host: config.host });
      const port = (http.server.address() as AddressInfo).port;
      log.info({ port, host: config.host }, 'listening');
      return port;
    },
    stop() {
      stopping ??= (async () => {
        const deadline = Date.now() + config.drain.shutdownTimeoutMs - 2000;
        await drain!.run(deadline);
        // Every drained socket's disconnect (away + eviction job + index removal, several Redis
        // round trips each) must be recorded before the queues close and the index goes; under
        // load or a slow Redis that takes far longer than any fixed pause.
        const left = await sessions.settle(deadline);
        if (left > 0) log.warn({ left }, 'shutdown deadline: some disconnects unrecorded, left for the reaper');
        heads.stop();
        await jobs.close();
        await liveness.stop();
        await new Promise<void>((resolve) => io.close(() => resolve()));
        await http.close();
        await redis.close();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}

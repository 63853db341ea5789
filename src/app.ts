import { createRequire } from 'node:module';
import { z } from 'zod';
import type { AddressInfo } from 'node:net';
import { requireRedis, type Config } from './config/index.js';
import { createLogger, type Logger } from './observability/logger.js';
import { collectDefaultMetrics, metrics } from './observability/metrics.js';
import { NAMESPACE } from '@tether/protocol';
import { connectRedis, type RedisConnections } from './redis/client.js';
import { Keys } from './redis/keys.js';
import { Scripts } from './redis/scripts.js';
import { Jobs } from './jobs/queues.js';
import { Limits } from './limits/limits.js';
import { EventStore } from './events/store.js';
import { EventService } from './events/service.js';
import { eventRequests } from './events/handlers.js';
import { eventRoutes } from './events/routes.js';
import { RoomHeads } from './events/heads.js';
import { InboxStore } from './inbox/store.js';
import { InboxService } from './inbox/service.js';
import { inboxRequests } from './inbox/handlers.js';
import { inboxRoutes } from './inbox/routes.js';
import { MembershipStore } from './membership/store.js';
import { MembershipService } from './membership/service.js';
import { membershipRequests } from './membership/handlers.js';
import { membershipRoutes } from './membership/routes.js';
import { PlaybackStore } from './playback/store.js';
import { PlaybackService } from './playback/service.js';
import { playbackRequests } from './playback/handlers.js';
import { RoomStore } from './rooms/store.js';
import { RoomService } from './rooms/service.js';
import { WEBHOOK_SWEEP_QUEUE, Webhooks } from './webhooks/service.js';
import { roomRequests } from './rooms/handlers.js';
import { roomRoutes } from './rooms/routes.js';
import { demoRoutes } from './demo/routes.js';
import { SessionStore } from './sessions/store.js';
import { SessionService, type Authenticated } from './sessions/service.js';
import { NodeLiveness, REAP_EVERY_MS, REAP_QUEUE, reapDeadNodes } from './sessions/liveness.js';
import { addressResolver } from './transport/address.js';
import { installConnections } from './transport/connection.js';
import { Drain, gateHandshakes } from './transport/drain.js';
import { SocketIoFanout } from './transport/fanout.js';
import { createHttp, registerRoutes } from './transport/http.js';
import { createIo } from './transport/io.js';
import { BroadcastMarks } from './transport/marks.js';
import { RequestRouter } from './transport/router.js';
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

/**
 * The composition root: the only file that names every part. Domains see the transport through
 * the fanout port (fanout/) and each other through their services; the transport sees domains only
 * through the hooks, requests and routes handed to it here.
 */
export async function createApp(config: Config): Promise<App> {
  const log = createLogger({ level: config.logLevel, nodeId: config.nodeId });
  collectDefaultMetrics();

  // Infrastructure.
  const redis: RedisConnections = await connectRedis(requireRedis(config), log);
  const scripts = new Scripts(redis.commands, () => redis.masters(), {
    replicas: config.redis.waitReplicas,
    timeoutMs: config.redis.waitTimeoutMs,
    wait: (key, replicas, timeoutMs) => redis.waitForReplicas(key, replicas, timeoutMs),
  });
  await scripts.load();
  const keys = new Keys(config.redis.keyPrefix);
  const jobs = new Jobs(redis.queue, (partition) => keys.bullPrefix(partition), config.redis.queuePartitions, log);
  const limits = new Limits(config, redis.client, log);
  const addressOf = addressResolver(config.limits.trustProxy);

  let drain: Drain | undefined;
  const isReady = async () => {
    if (drain?.active) return { ready: false, reason: 'draining' };
    try {
      await Promise.race([
        redis.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), REDIS_PROBE_TIMEOUT_MS).unref()),
      ]);
      metrics.redisUp.set(1);
      return { ready: true };
    } catch (err) {
      metrics.redisUp.set(0);
      return { ready: false, reason: `redis: ${(err as Error).message}` };
    }
  };

  // Transport.
  const http = createHttp(config, log);
  const marks = new BroadcastMarks();
  const { server: io, subscribed, envelope } = createIo(http.server, config, redis, log, marks);
  const nsp = io.of(NAMESPACE);
  drain = new Drain(config, nsp, log);
  gateHandshakes(http.server, drain);
  const fanout = new SocketIoFanout(nsp, addressOf, marks, subscribed, envelope);

  // Liveness first: connections are indexed under its instance from the first handshake on.
  const liveness = new NodeLiveness(config.nodeId, redis.commands, keys, log, (oldInstance: string) => {
    // This process was (or may have been) declared dead while cut off from Redis: the clients of
    // the old instance reconnect and rejoin rather than sit on seats the reaper marked away.
    for (const conn of fanout.localConns()) if (conn.data.nodeInstance === oldInstance) conn.closeTransport();
  });

  // Domains.
  const sessionStore = new SessionStore(config, redis.commands, scripts, keys);
  const roomStore = new RoomStore(config, redis.commands, scripts, keys);
  const webhooks = new Webhooks(config, redis.commands, () => redis.masters(), keys, jobs, log);
  const sessions = new SessionService(config, sessionStore, fanout, liveness, limits);
  const rooms = new RoomService(config, roomStore, limits, webhooks);
  const events = new EventService(config, new EventStore(config, redis.commands, scripts, keys), fanout);
  const membership = new MembershipService(config, new MembershipStore(config, scripts, keys), sessionStore, roomStore, rooms, events, limits, jobs, fanout, webhooks, log);
  const playback = new PlaybackService(config, new PlaybackStore(config, scripts, keys), jobs, fanout, log);
  const inbox = new InboxService(config, new InboxStore(config, scripts, keys), fanout, jobs, webhooks, log);
  const heads = new RoomHeads(config, new EventStore(config, redis.commands, scripts, keys), fanout, log);

  const requests = new RequestRouter(log, fanout, [
    ...roomRequests(rooms),
    ...membershipRequests(membership),
    ...eventRequests(config, events, limits),
    ...playbackRequests(playback),
    ...inboxRequests(config, inbox),
  ]);
  installConnections<Authenticated>(
    nsp,
    fanout,
    requests,
    {
      authenticate: async (auth, conn) => {
        const authenticated = await sessions.authenticate(auth, conn);
        return { data: authenticated.data, handshake: authenticated };
      },
      onConnected: [(conn, a) => sessions.announce(conn, a), (conn, a) => membership.onConnected(conn, a.intent), (conn) => inbox.deliverPending(conn)],
      onDisconnected: [
        // Seat first, index entry last: a worker dying half-way leaves the socket indexed, and the
        // reaper runs the (idempotent) rest.
        async (conn, reason) => {
          await membership.disconnected(conn.data.clientId, conn.data.epoch, reason);
          await sessions.unindex(conn.data);
        },
        (conn) => inbox.disconnected(conn),
      ],
      track: (work) => sessions.track(work),
      isDraining: () => drain!.active,
      nodeInstance: () => liveness.instance,
    },
    log,
  );

  await registerRoutes(http, {
    config,
    version: (createRequire(import.meta.url)('../package.json') as { version: string }).version,
    log,
    limits,
    isReady,
    beforeScrape: () => jobs.sampleDepths(),
    routes: [
      roomRoutes(rooms),
      membershipRoutes(membership),
      eventRoutes(events, limits),
      inboxRoutes(inbox),
      demoRoutes(rooms, { roomsEnabled: config.demo.rooms, maxParticipants: config.rooms.maxParticipants }),
    ],
  });

  for (const kind of membership.jobKinds()) jobs.work(kind);
  if (webhooks.enabled) {
    jobs.work(webhooks.deliveryJobKind());
    jobs.work(inbox.userOfflineJobKind());
    jobs.work(webhooks.sweepJobKind());
    await jobs.every(WEBHOOK_SWEEP_QUEUE, 'webhooks-sweep', config.webhooks.sweepMs, { v: 1 });
  }
  jobs.work(playback.syncJobKind());
  jobs.work({
    queue: REAP_QUEUE,
    schema: z.object({ v: z.literal(1) }),
    concurrency: 1,
    perRoom: false,
    process: () =>
      reapDeadNodes(redis.commands, keys, sessionStore, [(s) => membership.disconnected(s.clientId, s.epoch, 'node lost'), (s) => inbox.reaped(s)], log),
  });
  await jobs.every(REAP_QUEUE, 'reaper', REAP_EVERY_MS, { v: 1 });
  await liveness.start();
  heads.start();

  await http.ready();
  await isReady();

  let stopping: Promise<void> | undefined;
  return {
    config,
    log,
    io,
    async listen() {
      await http.listen({ port: config.port, host: config.host, backlog: config.listenBacklog });
      const port = (http.server.address() as AddressInfo).port;
      log.info({ port, host: config.host }, 'listening');
      return port;
    },
    stop() {
      stopping ??= (async () => {
        const t0 = Date.now();
        const deadline = t0 + config.drain.shutdownTimeoutMs - 2000;
        // Each step is logged with the time it took: a stop that hits SHUTDOWN_TIMEOUT_MS says where.
        const step = (name: string) => log.info({ step: name, ms: Date.now() - t0 }, 'shutdown step done');
        await drain!.run(deadline);
        step('drained');
        // Every drained connection's disconnect (away + eviction job + index removal, several Redis
        // round trips each) must be recorded before the queues close and the index goes; under
        // load or a slow Redis that takes far longer than any fixed pause.
        const left = await sessions.settle(deadline);
        if (left > 0) log.warn({ left }, 'shutdown deadline: some disconnects unrecorded, left for the reaper');
        step('disconnects recorded');
        heads.stop();
        await jobs.close();
        step('queues closed');
        await liveness.stop();
        // The HTTP API before Socket.IO: Socket.IO's close waits for the http server's close
        // callback, which fires only once every connection ended, and an API client publishing
        // steadily over keep-alive never lets its connection go idle — it held a drained worker
        // until SHUTDOWN_TIMEOUT_MS. Closing, Fastify answers what still arrives with 503 and
        // `Connection: close`; connections that go idle afterwards are closed here at once instead
        // of after the keep-alive timeout.
        const idle = setInterval(() => http.server.closeIdleConnections(), 100);
        try {
          await http.close();
        } finally {
          clearInterval(idle);
        }
        step('http closed');
        await new Promise<void>((resolve) => io.close(() => resolve()));
        step('sockets closed');
        await redis.close();
        log.info({ ms: Date.now() - t0 }, 'stopped');
      })();
      return stopping;
    },
  };
}

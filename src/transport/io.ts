import { ServerResponse, type IncomingMessage, type Server as HttpServer } from 'node:http';
import cors from 'cors';
import { Server } from 'socket.io';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import type { Config } from '../config/index.js';
import type { AdapterClient, RedisConnections } from '../redis/client.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { BroadcastMarks } from './marks.js';
import type { TetherServer } from './types.js';
import type { Joined, ScriptBroadcast } from '../fanout/port.js';

export interface TetherIo {
  server: TetherServer;
  /**
   * Resolves once this worker receives the broadcasts of a Socket.IO room it just joined a socket
   * to (at once with the classic adapter, whose one pattern subscription covers every room), or
   * after a bounded wait, with `late` settling when it does.
   */
  subscribed(room: string): Promise<Joined>;
  /**
   * What a Lua script needs to broadcast a sequenced event to a Socket.IO room itself, as the
   * adapter would (null where it cannot: on a Redis Cluster the room's channel lives in another
   * slot than the room's keys).
   */
  envelope: ((room: string, event: string, except: readonly string[]) => ScriptBroadcast) | null;
}


/**
 * The adapter uid scripts publish under. Each worker's adapter skips messages of its own uid (6
 * random characters) and delivers every other one to its sockets in the room: a script's message
 * reaches every worker, the one that ran the script included.
 */
const SCRIPT_UID = 'tether-log';

/**
 * The Socket.IO server and its adapter — the one place that decides how broadcasts cross workers.
 * Socket.IO's own connection state recovery stays off: it lives in one worker's memory and does
 * not survive a restart; Tether's catch-up log in Redis replaces it.
 *
 * Standalone and Sentinel: the classic adapter (PUBLISH/PSUBSCRIBE; every worker receives every
 * broadcast and drops those for rooms it does not hold). Redis Cluster: classic PUBLISH is copied
 * to every node of the cluster, so there the sharded adapter is used (SPUBLISH/SSUBSCRIBE, Redis
 * 7): a channel lives on the master owning its slot, and in the "dynamic" subscription mode every
 * Socket.IO room gets its own channel, so a worker receives only the rooms it holds sockets in and
 * the channels spread over the masters. Tether's traffic is one namespace (/sync), which "static"
 * mode would put on one channel — one slot, one master, every broadcast to every worker, the very
 * thing sharding is for. "dynamic-private" would add a channel per socket (a SSUBSCRIBE per
 * connect, thousands in a reconnect storm) for what Tether sends to one socket across workers: only
 * the takeover notice, which goes through the namespace channel instead.
 *
 * Room events in order: with the classic adapter the script that appends a sequenced event to a
 * room's log also PUBLISHes its broadcast (`envelope`), in the same atomic step, so every worker
 * receives a room's events in seq order — the one that ran the script too, through Redis like the others.
 * A worker that emitted its own appends locally interleaved them with the other workers' at the
 * pub/sub hop: a loaded worker reordered a busy room by hundreds of ms, every client of the room
 * saw holes at once and fetched them with room:catchup, for events already on their way — more
 * load on the loaded worker. On a Redis Cluster (a room's shard channel lives in another slot than
 * its keys) and with REDIS_WAIT_REPLICAS the workers emit, once the script has returned.
 */
export function createIo(httpServer: HttpServer, config: Config, redis: RedisConnections, log: Logger, marks: BroadcastMarks): TetherIo {
  const io: TetherServer = new Server(httpServer, {
    pingInterval: config.ws.pingInterval,
    pingTimeout: config.ws.pingTimeout,
    maxHttpBufferSize: config.ws.maxPayloadBytes,
    serveClient: false,
  });
  corsForHttpOnly(io, config);
  coalesceFlushes(io);
  releaseUpgradeResponses(io);
  // "-json": the channel changed with the parser, so a worker of an older version (msgpack)
  // never tries to decode these messages during a rolling deploy, nor these workers theirs.
  const channelPrefix = `${config.redis.keyPrefix}-io-json`;
  // A Socket.IO room's channel, as both adapters name it.
  const roomChannel = (room: string): string => `${channelPrefix}#${NAMESPACE}#${room}#`;
  if (redis.mode !== 'cluster') {
    io.adapter(
      createAdapter(guardPublishes(redis.adapterPub, 'publish', log), redis.adapterSub, {
        key: channelPrefix,
        requestsTimeout: 5000,
        parser: jsonParser(marks),
      }),
    );
    // The adapter's own message, `[uid, packet, opts]` in jsonParser's JSON, on the room's channel.
    // Not with REDIS_WAIT_REPLICAS: an event is broadcast only once replicas hold it (the worker
    // emits after the script's WAIT), or a failover could hand its seq to another event.
    const head = `[${JSON.stringify(SCRIPT_UID)},{"type":2,"data":[`;
    const nsp = `],"nsp":${JSON.stringify(NAMESPACE)}},{"rooms":[`;
    const envelope = (room: string, event: string, except: readonly string[]): ScriptBroadcast => ({
      channel: roomChannel(room),
      head: `${head}${JSON.stringify(event)},`,
      tail: `${nsp}${JSON.stringify(room)}],"except":${JSON.stringify(except)},"flags":{}}]`,
    });
    return { server: io, subscribed: async () => HEARD, envelope: config.redis.waitReplicas > 0 ? null : envelope };
  }
  // The sharded adapter has no parser option: it writes JSON.stringify of every message without
  // binary (Tether never sends binary) and reads JSON for what starts with '{' — the same JSON as
  // jsonParser, checked by the same 1e308 / lone-surrogate tests on the cluster topology. Marks
  // are noted where it encodes (this worker's broadcasts) and where it takes a decoded message.
  const subscribed = trackSubscriptions(redis.adapterSub, roomChannel, log, config.redis.testSubscribeDelayMs);
  const sharded = createShardedAdapter(guardPublishes(redis.adapterPub, 'sPublish', log), redis.adapterSub, { channelPrefix, subscriptionMode: 'dynamic' });
  io.adapter(function (nsp: unknown) {
    return observeSharded(sharded(nsp), marks);
  } as unknown as typeof sharded);
  return { server: io, subscribed, envelope: null };
}

/**
 * CORS headers for Engine.IO's HTTP requests (long-polling), as Socket.IO's `cors` option would
 * add them, but not on WebSocket upgrades: browsers apply no CORS to a WebSocket, and the option's
 * middleware ran on every upgrade only to set headers on a response that is never sent (a
 * measurable part of a connect's CPU).
 */
function corsForHttpOnly(io: TetherServer, config: Config): void {
  const middleware = cors({ origin: config.corsOrigin, credentials: config.corsOrigin !== '*' });
  io.engine.use((req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => {
    if (req.headers.upgrade) next();
    else middleware(req, res, next);
  });
}

/**
 * One write per flush instead of one per packet. engine.io writes a connection's buffered packets
 * (everything emitted while its previous write was in flight: a catch-up replay, a busy room's
 * broadcasts under load) as one WebSocket frame each, and each frame is a writev syscall of its
 * own: in a reconnect storm that was a third of the surviving worker's CPU. Corking the TCP socket
 * from engine.io's `flush` to its `drain` (both emitted synchronously around the transport's send)
 * hands the kernel the frames of one flush in one writev; frames, order and callbacks are unchanged.
 */
function coalesceFlushes(io: TetherServer): void {
  type RawSocket = { cork(): void; uncork(): void };
  type EngineSocket = { transport?: { name?: string; socket?: { _socket?: RawSocket } } };
  const corked = new WeakMap<object, RawSocket>();
  const raw = (socket: EngineSocket): RawSocket | undefined => {
    const t = socket.transport;
    // ws keeps the TCP socket as `_socket` (stable since ws 1.x); polling has nothing to coalesce.
    const s = t?.name === 'websocket' ? t.socket?._socket : undefined;
    return typeof s?.cork === 'function' ? s : undefined;
  };
  io.engine.on('flush', (socket: EngineSocket, buffer: unknown[]) => {
    if (buffer.length < 2) return;
    const s = raw(socket);
    if (!s) return;
    s.cork();
    corked.set(socket, s);
  });
  io.engine.on('drain', (socket: EngineSocket) => {
    const s = corked.get(socket);
    if (!s) return;
    corked.delete(socket);
    s.uncork();
  });
}

/**
 * engine.io answers a WebSocket upgrade through a stand-in response that keeps the upgrade request
 * and stays referenced by a `close` listener on the TCP socket for the connection's whole life. Its
 * job (headers that middlewares set) ends when engine.io calls its `writeHead`, right before the
 * socket goes to ws: it lets go of the request there — for a direct WebSocket connection and for a
 * polling one that upgrades alike — so that releasing the request once the namespace handshake
 * has read it (connection.ts) frees it.
 */
function releaseUpgradeResponses(io: TetherServer): void {
  type Response = { req?: unknown; writeHead(...args: unknown[]): unknown };
  io.engine.use((_req: unknown, res: Response, next: () => void) => {
    if (!(res instanceof ServerResponse)) {
      const writeHead = res.writeHead;
      res.writeHead = function (this: Response, ...args: unknown[]) {
        const out = writeHead.apply(this, args);
        this.req = undefined;
        return out;
      };
    }
    next();
  });
}

/** Notes the seqs of the sharded adapter's broadcasts, as jsonParser does for the classic one. */
function observeSharded<A>(adapter: A, marks: BroadcastMarks): A {
  const a = adapter as unknown as { encode(msg: unknown): unknown; onMessage(msg: unknown, offset?: string): unknown };
  const encode = a.encode.bind(adapter);
  const onMessage = a.onMessage.bind(adapter);
  a.encode = (msg) => {
    marks.observe(msg);
    return encode(msg);
  };
  a.onMessage = (msg, offset) => {
    marks.observe(msg);
    return onMessage(msg, offset);
  };
  return adapter;
}

const NAMESPACE = '/sync';
const SUBSCRIBE_WAIT_MS = 2000;
const HEARD: Joined = { late: null };

/**
 * The sharded adapter subscribes to a room's channel when the room's first local socket joins it,
 * without waiting for Redis to confirm, and lets a failed SSUBSCRIBE go unhandled. A broadcast
 * published between the join and the confirmation would pass this worker by, after the join's
 * fill from the log had already been read — a gap only the next room head would repair. So the
 * transport awaits the confirmation before it fills, and a failed SSUBSCRIBE is retried while the
 * room is still held here, instead of leaving the room deaf on this worker. The wait is bounded
 * (Redis being away must not hold a join): past it, the join goes on with `late`, which settles at
 * the confirmation, so the caller fills again from where its first fill ended.
 */
function trackSubscriptions(sub: AdapterClient, channelOf: (room: string) => string, log: Logger, delayMs: number): (room: string) => Promise<Joined> {
  type Sub = (channels: string | string[], listener: unknown, bufferMode?: boolean) => Promise<unknown>;
  const client = sub as unknown as { sSubscribe: Sub; sUnsubscribe: Sub };
  const sSubscribe = client.sSubscribe.bind(sub);
  const sUnsubscribe = client.sUnsubscribe.bind(sub);
  const wanted = new Set<string>();
  const pending = new Map<string, Promise<void>>();
  let failing = false;
  client.sSubscribe = (channels, listener, bufferMode) => {
    const channel = ([] as string[]).concat(channels)[0]!;
    wanted.add(channel);
    const attempt = async (n: number): Promise<void> => {
      try {
        await sSubscribe(channels, listener, bufferMode);
        failing = false;
      } catch (err) {
        if (!failing) log.warn({ channel, err: (err as Error).message }, 'SSUBSCRIBE failed: retrying while the room is held here (clients fill from room heads meanwhile)');
        failing = true;
        await sleep(Math.min(100 * 2 ** n, 2000));
        if (wanted.has(channel)) await attempt(n + 1);
      }
    };
    const done = delayMs > 0 ? sleep(delayMs).then(() => attempt(0)) : attempt(0);
    pending.set(channel, done);
    void done.finally(() => {
      if (pending.get(channel) === done) pending.delete(channel);
    });
    return done;
  };
  client.sUnsubscribe = (channels, listener, bufferMode) => {
    for (const c of ([] as string[]).concat(channels)) wanted.delete(c);
    return sUnsubscribe(channels, listener, bufferMode).catch((err: unknown) => log.debug({ err: (err as Error).message }, 'SUNSUBSCRIBE failed'));
  };
  return async (room) => {
    const done = pending.get(channelOf(room));
    if (!done) return HEARD;
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([done.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS, false)))]);
    clearTimeout(timer);
    if (inTime) return HEARD;
    metrics.lateSubscriptions.inc();
    return { late: done };
  };
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
function guardPublishes(client: AdapterClient, method: 'publish' | 'sPublish', log: Logger): AdapterClient {
  type Publish = (...args: unknown[]) => Promise<number>;
  const target = client as unknown as Record<typeof method, Publish>;
  const publish = target[method].bind(client);
  let failing = false;
  target[method] = (...args) =>
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

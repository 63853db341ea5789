import { createClient, createCluster, createSentinel } from '@redis/client';
import { Cluster as IoCluster, Redis as IoRedis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import type { RedisConfig, RedisNode } from '../config/index.js';
import type { Logger } from '../observability/logger.js';

/**
 * The Redis commands Tether's stores issue outside Lua, with the shapes they rely on. One interface
 * over node-redis' standalone client, Cluster client and Sentinel client: every store takes this,
 * never a concrete client, so no store knows which topology it runs on. Every command here takes
 * one key, so on a Cluster each is routed to the key's master (MOVED/ASK are followed by the
 * client).
 */
export interface RedisCommands {
  hGetAll(key: string): Promise<Record<string, string>>;
  hmGet(key: string, fields: string[]): Promise<(string | null)[]>;
  hGet(key: string, field: string): Promise<string | null>;
  hExists(key: string, field: string): Promise<number>;
  hSet(key: string, field: string, value: string): Promise<number>;
  hDel(key: string, field: string): Promise<number>;
  hLen(key: string): Promise<number>;
  set(key: string, value: string, options: { PX: number; XX?: true }): Promise<string | null>;
  del(key: string): Promise<number>;
  exists(key: string): Promise<number>;
  sAdd(key: string, member: string): Promise<number>;
  sRem(key: string, member: string): Promise<number>;
  sMembers(key: string): Promise<string[]>;
  zAdd(key: string, member: { score: number; value: string }): Promise<number>;
  zRangeByScoreWithScores(key: string, min: number | string, max: number | string, options: { LIMIT: { offset: number; count: number } }): Promise<{ value: string; score: number }[]>;
  zRem(key: string, members: string | string[]): Promise<number>;
  lRange(key: string, start: number, stop: number): Promise<string[]>;
  lRem(key: string, count: number, element: string): Promise<number>;
  lLen(key: string): Promise<number>;
  lPush(key: string, element: string): Promise<number>;
  lTrim(key: string, start: number, stop: number): Promise<string>;
  /** Scripts are routed by their first key (all keys of a Tether script share one hash tag). */
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/**
 * What one node can do beyond keyed commands: load a script into its own cache, answer a ping,
 * SCAN its own keyspace (on a Cluster a SCAN sees one master's keys only: a full pass asks each).
 */
export interface RedisNodeCommands {
  scriptLoad(source: string): Promise<string>;
  ping(): Promise<string>;
  scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string[]>;
}

type NodeRedisClient = ReturnType<typeof makeClient>;
type NodeRedisCluster = ReturnType<typeof makeCluster>;
type NodeRedisSentinel = ReturnType<typeof makeSentinel>;
/** A node-redis client of any topology, as the Socket.IO adapter and rate-limiter-flexible take it. */
export type NodeRedis = NodeRedisClient | NodeRedisCluster | NodeRedisSentinel;
/** What the Socket.IO adapter is given: node-redis, or ioredis where it follows a topology better. */
export type AdapterClient = NodeRedis | IoRedis;

/**
 * Redis connections of one worker. Commands and Lua go through `commands`; the Socket.IO adapter
 * needs its own publisher and a subscriber (a subscribed connection can run nothing else). BullMQ
 * brings its own connections (ioredis, which it is built and tested on): `queue` is what it is
 * given — plain options on a standalone Redis, one shared ioredis Cluster or Sentinel-following
 * client otherwise (its workers duplicate it for their blocking connection).
 */
export interface RedisConnections {
  readonly mode: RedisConfig['mode'];
  readonly commands: RedisCommands;
  /** The same connection as `commands`, as the client library object (rate-limiter-flexible takes it). */
  readonly client: NodeRedis;
  readonly adapterPub: AdapterClient;
  readonly adapterSub: AdapterClient;
  readonly queue: ConnectionOptions;
  /**
   * Every master (one on standalone and Sentinel): a script cache is per node, so preloading goes
   * to each; a promoted replica or a new master starts empty and EVALSHA falls back to EVAL there.
   */
  masters(): Promise<RedisNodeCommands[]>;
  /** Resolves when Redis answers: on a Cluster, when any master does (one master down must not make every worker unready). */
  ping(): Promise<void>;
  /**
   * WAIT on the connection that wrote `key` (its master's): resolves with how many replicas have
   * every write this connection made so far, once `replicas` do or after `timeoutMs`.
   */
  waitForReplicas(key: string, replicas: number, timeoutMs: number): Promise<number>;
  close(): Promise<void>;
}

/*
 * node-redis 6 talks RESP3 by default. Tether pins RESP2: under RESP3 a Lua `false` (what
 * redis.call returns for a missing field) reaches the client as a boolean instead of nil and `true`
 * as a boolean instead of 1, which would change what every script returns. And it turns off the
 * 5 s default command timeout of 6.x: a command written to a Redis that is paused still runs when
 * it resumes, so failing it locally would report a publish as failed that was in fact appended
 * (the readiness probe has its own timeout).
 */
const RESP = 2 as const;
const COMMAND_OPTIONS = { timeout: 0 };
// Reconnect forever with a capped backoff: a Redis restart must not kill workers.
const reconnectStrategy = (retries: number) => Math.min(50 * 2 ** retries, 2000);

function makeClient(url: string) {
  return createClient({ url, RESP, commandOptions: COMMAND_OPTIONS, socket: { reconnectStrategy, connectTimeout: 5000 } });
}

function nodeSocket(config: RedisConfig) {
  return config.tls ? { tls: true as const, reconnectStrategy, connectTimeout: 5000 } : { reconnectStrategy, connectTimeout: 5000 };
}

function makeCluster(config: RedisConfig) {
  return createCluster({
    rootNodes: config.clusterNodes.map((n) => ({ socket: { host: n.host, port: n.port } })),
    RESP,
    commandOptions: COMMAND_OPTIONS,
    defaults: { username: config.username, password: config.password, socket: nodeSocket(config) },
    // A redirect loop longer than this is a cluster in trouble, not a migration.
    maxCommandRedirections: 16,
  });
}

function makeSentinel(config: RedisConfig) {
  return createSentinel({
    name: config.sentinelName,
    sentinelRootNodes: config.sentinels.map((n) => ({ host: n.host, port: n.port })),
    RESP,
    commandOptions: COMMAND_OPTIONS,
    nodeClientOptions: { username: config.username, password: config.password, socket: nodeSocket(config) },
    sentinelClientOptions: { password: config.sentinelPassword, socket: nodeSocket(config) },
    // One connection to the master per role, as on standalone; replicas are not read from (reads
    // must see the writes just made: a replica lags).
    masterPoolSize: 1,
    replicaPoolSize: 0,
    // Re-asks the Sentinels this often besides following their +switch-master messages.
    scanInterval: 2000,
  });
}

export async function connectRedis(config: RedisConfig, log: Logger): Promise<RedisConnections> {
  const watch = <C extends { on(event: 'error', l: (err: Error) => void): unknown }>(client: C, role: string): C => {
    let lastError = '';
    client.on('error', (err: Error) => {
      // node-redis emits an error per failed reconnect attempt; log each distinct one once.
      if (err.message !== lastError) log.warn({ role, err: err.message }, 'redis connection error');
      lastError = err.message;
    });
    return client;
  };

  if (config.mode === 'cluster') return connectCluster(config, watch, log);
  if (config.mode === 'sentinel') return connectSentinel(config, watch, log);
  return connectStandalone(config, watch, log);
}

type Watch = <C extends { on(event: 'error', l: (err: Error) => void): unknown }>(client: C, role: string) => C;

async function connectStandalone(config: RedisConfig, watch: Watch, log: Logger): Promise<RedisConnections> {
  const url = config.url!;
  const make = (u: string, role: string) => {
    const client = watch(makeClient(u), role);
    let down = false;
    client.on('error', () => (down = true));
    client.on('ready', () => {
      if (down) log.info({ role }, 'redis connection restored');
      down = false;
    });
    return client;
  };
  const commands = make(url, 'commands');
  const adapterPub = make(config.adapterUrl ?? url, 'adapter-pub');
  const adapterSub = make(config.adapterUrl ?? url, 'adapter-sub');
  await Promise.all([commands.connect(), adapterPub.connect(), adapterSub.connect()]);
  const clients = [commands, adapterPub, adapterSub];
  return {
    mode: 'standalone',
    commands: asCommands(commands),
    client: commands,
    adapterPub,
    adapterSub,
    queue: queueOptionsFromUrl(config.queueUrl ?? url),
    masters: async () => [commands],
    ping: async () => void (await commands.ping()),
    waitForReplicas: async (_key, replicas, timeoutMs) => Number(await commands.sendCommand(['WAIT', String(replicas), String(timeoutMs)])),
    close: once(() => Promise.allSettled(clients.map((c) => (c.isOpen ? c.close() : undefined)))),
  };
}

async function connectCluster(config: RedisConfig, watch: Watch, log: Logger): Promise<RedisConnections> {
  const commands = watch(makeCluster(config), 'commands');
  const adapterPub = watch(makeCluster(config), 'adapter-pub');
  const adapterSub = watch(makeCluster(config), 'adapter-sub');
  await Promise.all([commands.connect(), adapterPub.connect(), adapterSub.connect()]);
  const queue = new IoCluster(
    config.clusterNodes.map((n) => ({ host: n.host, port: n.port })),
    ioClusterOptions(config),
  );
  queue.on('error', (err: Error) => log.warn({ role: 'queue', err: err.message }, 'redis connection error'));
  const masters = async () => Promise.all(commands.masters.map((m) => commands.nodeClient(m)));
  return {
    mode: 'cluster',
    commands: asCommands(commands),
    client: commands,
    adapterPub,
    adapterSub,
    queue,
    masters,
    ping: async () => void (await Promise.any((await masters()).map((m) => m.ping()))),
    waitForReplicas: async (key, replicas, timeoutMs) => Number(await commands.sendCommand(key, false, ['WAIT', String(replicas), String(timeoutMs)])),
    close: once(async () => {
      await Promise.allSettled([commands, adapterPub, adapterSub].map((c) => (c.isOpen ? c.close() : undefined)));
      queue.disconnect();
    }),
  };
}

/*
 * Sentinel: commands through node-redis' Sentinel client (it re-asks the Sentinels and retries on
 * READONLY when the master moved); the adapter's publisher and subscriber and BullMQ through
 * ioredis' Sentinel support. node-redis 6's Sentinel pub/sub proxy was seen, in the failover test,
 * to keep reconnecting to the dead master's address and never subscribe again on the promoted one;
 * ioredis asks the Sentinels on every reconnect and resubscribes its channels by itself.
 */
async function connectSentinel(config: RedisConfig, watch: Watch, log: Logger): Promise<RedisConnections> {
  const commands = watch(makeSentinel(config), 'commands');
  await commands.connect();
  const io = (role: string) => {
    const client = new IoRedis({ ...ioSentinelOptions(config), maxRetriesPerRequest: role === 'queue' ? null : 20 });
    let lastError = '';
    client.on('error', (err: Error) => {
      if (err.message !== lastError) log.warn({ role, err: err.message }, 'redis connection error');
      lastError = err.message;
    });
    client.on('ready', () => (lastError = ''));
    return client;
  };
  const adapterPub = io('adapter-pub');
  const adapterSub = io('adapter-sub');
  const queue = io('queue');
  await Promise.all([adapterPub, adapterSub].map((c) => new Promise<void>((resolve, reject) => {
    c.once('ready', () => resolve());
    c.once('end', () => reject(new Error('redis connection ended before it was ready')));
  })));
  return {
    mode: 'sentinel',
    commands: asCommands(commands),
    client: commands,
    adapterPub,
    adapterSub,
    queue,
    masters: async () => [commands],
    ping: async () => void (await commands.ping()),
    waitForReplicas: async (_key, replicas, timeoutMs) => Number(await commands.sendCommand(false, ['WAIT', String(replicas), String(timeoutMs)])),
    close: once(async () => {
      await Promise.allSettled([commands.isOpen ? commands.close() : undefined, adapterPub.quit(), adapterSub.quit()]);
      queue.disconnect();
    }),
  };
}

/** BullMQ's blocking workers must retry forever (maxRetriesPerRequest null), on every topology. */
function queueOptionsFromUrl(url: string): ConnectionOptions {
  const q = new URL(url);
  return {
    host: q.hostname,
    port: Number(q.port || 6379),
    username: q.username ? decodeURIComponent(q.username) : undefined,
    password: q.password ? decodeURIComponent(q.password) : undefined,
    db: q.pathname.length > 1 ? Number(q.pathname.slice(1)) : 0,
    tls: q.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

function ioClusterOptions(config: RedisConfig): ClusterOptions {
  return {
    redisOptions: {
      username: config.username,
      password: config.password,
      tls: config.tls ? {} : undefined,
      maxRetriesPerRequest: null,
    },
    // A slot migration answers TRYAGAIN to BullMQ's multi-key scripts until it completes.
    retryDelayOnTryAgain: 50,
    retryDelayOnClusterDown: 200,
    retryDelayOnFailover: 200,
    // BullMQ's scripts touch several keys of one queue: they all carry the queue's hash tag.
    enableOfflineQueue: true,
  };
}

function ioSentinelOptions(config: RedisConfig): RedisOptions {
  return {
    sentinels: config.sentinels.map((n: RedisNode) => ({ host: n.host, port: n.port })),
    name: config.sentinelName,
    username: config.username,
    password: config.password,
    sentinelPassword: config.sentinelPassword,
    tls: config.tls ? {} : undefined,
    enableTLSForSentinelMode: config.tls,
    // No failoverDetector: with it, a BullMQ connection was seen to end for good ('Connection is
    // closed.') after a failover; without it ioredis re-asks the Sentinels on every reconnect, and a
    // killed or demoted master closes its connections, which is what starts a reconnect.
    maxRetriesPerRequest: null,
  };
}

function once(fn: () => Promise<unknown>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn().then(() => undefined));
}

/** Compile-time proof that each node-redis client has the commands with the shapes stores rely on. */
function asCommands(client: NodeRedis): RedisCommands {
  return client;
}

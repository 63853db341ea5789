import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, createCluster } from 'redis';
import { Cluster as IoCluster } from 'ioredis';
import { Queue } from 'bullmq';
import { findRedisServer, freePort, startLocalRedis, type LocalRedis } from '../../src/cluster/local-redis.ts';
import { DEFAULT_CLUSTER_QUEUE_PARTITIONS } from '../../src/config/index.ts';
import { partitionOf } from '../../src/jobs/queues.ts';
import { Keys } from '../../src/redis/keys.ts';
import { track } from './processes.ts';

/**
 * The Redis topology the suite runs on: `TEST_REDIS_TOPOLOGY=cluster` makes every startRedis() a
 * private 3-master Redis Cluster (and every worker a cluster client of it); the default is one
 * redis-server. Same tests, one switch (scripts/test.mjs runs the cluster-sensitive files twice).
 */
export const TOPOLOGY: 'standalone' | 'cluster' = process.env.TEST_REDIS_TOPOLOGY === 'cluster' ? 'cluster' : 'standalone';

export interface RedisNodeProcess {
  port: number;
  process: ChildProcess;
}

export interface TestRedis {
  topology: 'standalone' | 'cluster';
  /** Standalone: the server. Cluster: the first master (a seed; use redisClient(), which follows the cluster). */
  url: string;
  /** Unique per call: tests sharing one Redis never see each other's keys. */
  prefix: string;
  /** The environment a worker needs to reach it (REDIS_URL, or REDIS_MODE=cluster + REDIS_CLUSTER_NODES). */
  env: Record<string, string>;
  /** Standalone private redis-server (absent when REDIS_URL was given or on a cluster): tests pause it with SIGSTOP. */
  process?: ChildProcess;
  port?: number;
  /** Cluster: the masters. */
  nodes?: RedisNodeProcess[];
  stop(): Promise<void>;
}

/** Worker env by URL, so helpers that only got `redisUrl` (startWorker) reach the right topology. */
const envByUrl = new Map<string, Record<string, string>>();

/** The environment that points a worker at the Redis whose (seed) URL this is. */
export function redisEnv(url: string): Record<string, string> {
  return envByUrl.get(url) ?? { REDIS_URL: url };
}

/**
 * A real Redis for a test file: REDIS_URL when the environment gives one (each call gets its own
 * key prefix), otherwise a private redis-server (or 3-master cluster) on free ports, stopped by stop().
 */
export async function startRedis(opts: { topology?: 'standalone' | 'cluster' } = {}): Promise<TestRedis> {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const topology = opts.topology ?? TOPOLOGY;
  if (topology === 'cluster') return startRedisCluster(prefix);
  if (process.env.REDIS_URL) return { topology, url: process.env.REDIS_URL, prefix, env: { REDIS_URL: process.env.REDIS_URL }, stop: async () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'tether-redis-'));
  const redis: LocalRedis = await startLocalRedis({ dir, persist: false });
  track(redis.process);
  return {
    topology,
    url: redis.url,
    prefix,
    env: { REDIS_URL: redis.url },
    process: redis.process,
    port: redis.port,
    async stop() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Spawns one redis-server with extra arguments on a free port and waits for PING. */
export async function spawnRedisNode(dir: string, args: string[], port?: number): Promise<RedisNodeProcess> {
  const binary = findRedisServer();
  if (!binary) throw new Error('redis-server is not installed');
  const p = port ?? (await freePort());
  const child = track(
    spawn(binary, ['--port', String(p), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', '--logfile', '', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${p} exited with ${child.exitCode}: ${stderr.trim()}`);
    if (redisCli(p, 'PING').stdout.trim() === 'PONG') return { port: p, process: child };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on ${p} did not answer: ${stderr.trim()}`);
    }
    await sleep(30);
  }
}

/** One redis-cli command against a loopback port (synchronous: for setup and topology changes). */
export function redisCli(port: number, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function stopNode(n: RedisNodeProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (n.process.exitCode !== null || n.process.signalCode !== null) return resolve();
    n.process.once('exit', () => resolve());
    n.process.kill('SIGKILL');
  });
}

/**
 * A private 3-master Redis Cluster on loopback: three redis-servers with `--cluster-enabled yes`
 * (their bus ports chosen free too, `cluster-port`), joined by `redis-cli --cluster create
 * --cluster-replicas 0`, ready when every node reports cluster_state:ok.
 */
async function startRedisCluster(prefix: string): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-redis-cluster-'));
  const nodes: RedisNodeProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const busPort = await freePort();
      nodes.push(
        await spawnRedisNode(dir, [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', `nodes-${i}.conf`,
          '--cluster-port', String(busPort),
          '--cluster-node-timeout', '5000',
          '--save', '',
          '--appendonly', 'no',
        ]),
      );
    }
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}\n${created.stderr}`);
    const deadline = Date.now() + 20_000;
    while (!nodes.every((n) => /cluster_state:ok/.test(redisCli(n.port, 'CLUSTER', 'INFO').stdout) && clusterKnowsAll(n.port, nodes.length))) {
      if (Date.now() > deadline) throw new Error('redis cluster did not become ready');
      await sleep(100);
    }
  } catch (err) {
    await Promise.all(nodes.map(stopNode));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const seeds = nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  const url = `redis://127.0.0.1:${nodes[0]!.port}`;
  const env = { REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: seeds };
  envByUrl.set(url, env);
  return {
    topology: 'cluster',
    url,
    prefix,
    env,
    nodes,
    async stop() {
      await Promise.all(nodes.map(stopNode));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every node sees every slot served (CLUSTER SLOTS covers 0-16383 with `masters` masters). */
function clusterKnowsAll(port: number, masters: number): boolean {
  const out = redisCli(port, 'CLUSTER', 'SHARDS').stdout;
  return (out.match(/^master$/gm) ?? []).length >= masters;
}

export type TestRedisClient = ReturnType<typeof createClient>;

/**
 * A client for inspecting and arranging state in tests, of the topology behind `url`. On a cluster
 * it is node-redis' cluster client: the commands tests use have the same names and shapes, so it is
 * typed as the standalone client.
 */
export async function redisClient(url: string): Promise<TestRedisClient> {
  const env = envByUrl.get(url);
  if (env?.REDIS_MODE === 'cluster') {
    const cluster = createCluster({
      rootNodes: env.REDIS_CLUSTER_NODES!.split(',').map((hp) => ({ url: `redis://${hp}` })),
      RESP: 2,
    });
    cluster.on('error', () => undefined);
    await cluster.connect();
    return cluster as unknown as TestRedisClient;
  }
  const client = createClient({ url, RESP: 2 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * A BullMQ queue of a worker's, as the worker sees it: the partition of `room` (per-room kinds) on
 * the topology behind `redis`. Close it after use.
 */
export function testQueue(redis: TestRedis, name: string, room?: string): Queue {
  const partitions = redis.topology === 'cluster' ? DEFAULT_CLUSTER_QUEUE_PARTITIONS : 1;
  const prefix = new Keys(redis.prefix).bullPrefix(room === undefined ? 0 : partitionOf(room, partitions));
  if (redis.topology === 'cluster') {
    const nodes = redis.env.REDIS_CLUSTER_NODES!.split(',').map((hp) => ({ host: hp.split(':')[0]!, port: Number(hp.split(':')[1]) }));
    const connection = new IoCluster(nodes, { redisOptions: { maxRetriesPerRequest: null } });
    const queue = new Queue(name, { connection, prefix });
    const close = queue.close.bind(queue);
    queue.close = async () => {
      await close();
      connection.disconnect();
    };
    return queue;
  }
  return new Queue(name, { connection: { url: redis.url, maxRetriesPerRequest: null } as never, prefix });
}

export interface TestSentinel {
  /** A name for startWorker's `redisUrl`: workers started with it get `env`. */
  url: string;
  prefix: string;
  name: string;
  /** Worker environment: REDIS_MODE=sentinel, REDIS_SENTINELS, REDIS_SENTINEL_NAME. */
  env: Record<string, string>;
  /** data nodes: [0] is the initial master, the rest replicas of it */
  data: RedisNodeProcess[];
  sentinels: RedisNodeProcess[];
  /** The master's port as the Sentinels report it now. */
  masterPort(): number;
  stop(): Promise<void>;
}

/**
 * 1 master, `replicas` replicas and 3 Sentinels on loopback (quorum 2, down after 1 s), every data
 * node with AOF and `appendfsync always`: what a failover test needs.
 */
export async function startSentinelTopology(opts: { replicas?: number } = {}): Promise<TestSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-sentinel-'));
  const name = 'tether-test';
  const nodes: RedisNodeProcess[] = [];
  const sentinels: RedisNodeProcess[] = [];
  const durable = ['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''];
  try {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const nodeDir = (i: number) => {
      const d = join(dir, `n${i}`);
      mkdirSync(d, { recursive: true });
      return d;
    };
    nodes.push(await spawnRedisNode(nodeDir(0), durable));
    for (let i = 1; i <= (opts.replicas ?? 1); i++) nodes.push(await spawnRedisNode(nodeDir(i), [...durable, '--replicaof', '127.0.0.1', String(nodes[0]!.port)]));
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${nodes[0]!.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(await spawnSentinel(conf, port));
    }
    // Replicas in sync and every Sentinel seeing the replicas and the other Sentinels.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const synced = nodes.slice(1).every((n) => /master_link_status:up/.test(redisCli(n.port, 'INFO', 'replication').stdout));
      const seen = sentinels.every((s) => {
        const out = redisCli(s.port, 'SENTINEL', 'MASTER', name).stdout.split('\n');
        const field = (k: string) => Number(out[out.indexOf(k) + 1]);
        return field('num-slaves') >= nodes.length - 1 && field('num-other-sentinels') >= 2;
      });
      if (synced && seen) break;
      if (Date.now() > deadline) throw new Error('sentinel topology did not settle');
      await sleep(100);
    }
  } catch (err) {
    await Promise.all([...sentinels, ...nodes].map(stopNode));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const env = { REDIS_MODE: 'sentinel', REDIS_SENTINELS: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','), REDIS_SENTINEL_NAME: name };
  const url = `sentinel://127.0.0.1:${sentinels[0]!.port}/${name}`;
  envByUrl.set(url, env);
  return {
    url,
    prefix: `t${randomBytes(4).toString('hex')}`,
    name,
    env,
    data: nodes,
    sentinels,
    masterPort() {
      for (const s of sentinels) {
        const out = redisCli(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).stdout.trim().split('\n');
        if (out.length === 2) return Number(out[1]);
      }
      throw new Error('no sentinel answered');
    },
    async stop() {
      await Promise.all([...sentinels, ...nodes].map(stopNode));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** redis-server in Sentinel mode needs its config file as the first argument (it rewrites it). */
async function spawnSentinel(conf: string, port: number): Promise<RedisNodeProcess> {
  const binary = findRedisServer()!;
  const child = track(spawn(binary, [conf, '--sentinel'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const deadline = Date.now() + 10_000;
  while (redisCli(port, 'PING').stdout.trim() !== 'PONG') {
    if (child.exitCode !== null) throw new Error(`sentinel on ${port} exited`);
    if (Date.now() > deadline) throw new Error(`sentinel on ${port} did not answer`);
    await sleep(30);
  }
  return { port, process: child };
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { startLocalRedis, type LocalRedis } from '../../src/cluster/local-redis.ts';
import { track } from './processes.ts';

export interface TestRedis {
  url: string;
  /** Unique per call: tests sharing one Redis never see each other's keys. */
  prefix: string;
  /** The private redis-server (absent when REDIS_URL was given): tests pause it with SIGSTOP. */
  process?: import('node:child_process').ChildProcess;
  port?: number;
  stop(): Promise<void>;
}

/**
 * A real redis-server for a test file: REDIS_URL when the environment gives one (each call gets
 * its own key prefix), otherwise a private redis-server on a free port, stopped by stop().
 */
export async function startRedis(): Promise<TestRedis> {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, prefix, stop: async () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'tether-redis-'));
  const redis: LocalRedis = await startLocalRedis({ dir, persist: false });
  track(redis.process);
  return {
    url: redis.url,
    prefix,
    process: redis.process,
    port: redis.port,
    async stop() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function redisClient(url: string) {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

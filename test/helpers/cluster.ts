import { startRedis, type TestRedis } from './redis.ts';
import { startWorkers, type Worker } from './workers.ts';
import { closeAll } from './clients.ts';

export interface TestCluster {
  redis: TestRedis;
  workers: Worker[];
  /** Closes every client the test opened, kills the workers, stops Redis. */
  stop(): Promise<void>;
}

/** One redis-server and `n` real workers sharing a key prefix. */
export async function startCluster(n: number, env?: Record<string, string>): Promise<TestCluster> {
  const redis = await startRedis();
  let workers: Worker[];
  try {
    workers = await startWorkers(n, { redisUrl: redis.url, prefix: redis.prefix, ...(env ? { env } : {}) });
  } catch (err) {
    // The caller never gets a cluster to stop: Redis would keep the test process alive until its timeout.
    await redis.stop();
    throw err;
  }
  return {
    redis,
    workers,
    async stop() {
      closeAll();
      await Promise.all(workers.map((w) => w.kill('SIGKILL')));
      await redis.stop();
    },
  };
}

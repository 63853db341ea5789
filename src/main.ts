import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { setupMaster, setupWorker } from '@socket.io/sticky';
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { createApp } from './app.js';
import { ensureRedisServer, RedisNotInstalledError, startLocalRedis, type LocalRedis } from './cluster/local-redis.js';

/**
 * Entry point.
 *   node dist/main.js            one worker on HOST:PORT (put your own balancer in front)
 *   node dist/main.js --cluster  a primary on HOST:PORT with WORKERS workers behind
 *                                @socket.io/sticky, and a local redis-server if REDIS_URL is unset
 */

function fail(message: string): never {
  process.stderr.write(`tether: ${message}\n`);
  process.exit(1);
}

function loadOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

async function runWorker(config: Config, sticky: boolean): Promise<void> {
  const app = await createApp(config);
  if (sticky) setupWorker(app.io);
  else await app.listen();
  if (sticky) process.send?.({ type: 'tether:ready' });

  const shutdown = (signal: string) => {
    app.log.info({ signal }, 'shutting down');
    const hard = setTimeout(() => {
      app.log.error('shutdown timeout: exiting');
      process.exit(1);
    }, config.drain.shutdownTimeoutMs);
    hard.unref();
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (err) => app.log.error({ err }, 'unhandled rejection'));
}

async function runPrimary(config: Config): Promise<void> {
  const say = (msg: string) => process.stdout.write(`tether: ${msg}\n`);
  let redis: LocalRedis | undefined;
  let redisUrl = config.redis.url;
  if (!redisUrl && config.redis.mode === 'standalone') {
    let binary: string;
    try {
      binary = ensureRedisServer(say);
    } catch (err) {
      if (err instanceof RedisNotInstalledError) fail(err.message);
      throw err;
    }
    redis = await startLocalRedis({ dir: resolve('.tether/redis'), persist: true, binary });
    redisUrl = redis.url;
    say(`started local redis-server on ${redisUrl} (data in .tether/redis)`);
  }

  const httpServer = createServer();
  // The primary hands each connection's first bytes to a worker over IPC: Buffers survive that
  // only with advanced serialization (JSON would turn them into plain objects).
  cluster.setupPrimary({ serialization: 'advanced' });
  setupMaster(httpServer, { loadBalancingMethod: 'least-connection' });
  let stopping = false;
  const fork = (index: number) => {
    // Workers inherit the environment (REDIS_MODE and its variables included); REDIS_URL only
    // when there is one (standalone), else the worker would refuse it next to REDIS_MODE=cluster.
    const worker = cluster.fork({ ...(redisUrl ? { REDIS_URL: redisUrl } : {}), NODE_ID: `${config.nodeId}-w${index}`, TETHER_WORKER_INDEX: String(index) });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      say(`worker ${index} exited (${signal ?? code}); restarting it`);
      setTimeout(() => fork(index), 500);
    });
  };
  for (let i = 0; i < config.workers; i++) fork(i);

  let ready = 0;
  cluster.on('message', (_w, msg: { type?: string }) => {
    if (msg?.type === 'tether:ready' && ++ready === config.workers) {
      httpServer.listen(config.port, config.host, () => {
        say(`cluster of ${config.workers} workers ready on http://${config.host}:${config.port} (Socket.IO namespace /sync). Ctrl-C stops everything.`);
      });
    }
  });

  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping workers…');
    httpServer.close();
    const workers = Object.values(cluster.workers ?? {});
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((res) => {
            if (!w || w.isDead()) return res();
            w.once('exit', () => res());
            w.process.kill('SIGTERM');
          }),
      ),
    );
    if (redis) {
      await redis.stop();
      say('stopped local redis-server');
    }
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

const config = loadOrExit();
if (cluster.isPrimary && process.argv.includes('--cluster')) {
  await runPrimary(config);
} else {
  await runWorker(config, cluster.isWorker);
}

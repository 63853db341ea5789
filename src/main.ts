import cluster from 'node:cluster';
import type { Server as HttpServer } from 'node:http';
import { resolve } from 'node:path';
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { createApp } from './app.js';
import { Front, joinFront, type FrontLink } from './cluster/front.js';
import type { LocalRedis } from './cluster/local-redis.js';

/**
 * Entry point.
 *   node dist/main.js            one worker on HOST:PORT (put your own balancer in front)
 *   node dist/main.js --cluster  a primary on HOST:PORT handing connections to WORKERS workers
 *                                (cluster/front.ts), and a local redis-server if REDIS_URL is unset
 *                                (standalone mode only)
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

async function runWorker(config: Config, clustered: boolean): Promise<void> {
  const app = await createApp(config);
  let front: FrontLink | undefined;
  if (clustered) {
    // Fastify over plain HTTP/1: Socket.IO is attached to a node:http server.
    front = joinFront(app.io.httpServer as HttpServer, app.io.engine);
    front.ready();
  } else await app.listen();

  let stopping = false;
  // Idempotent: Ctrl-C under `npm start` delivers SIGINT from the terminal and SIGTERM from the
  // primary; a second signal must not cut the drain short.
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    // Before the drain starts: the primary stops sending new sessions here at once.
    front?.draining();
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
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (err) => app.log.error({ err }, 'unhandled rejection'));
}

async function runPrimary(config: Config): Promise<void> {
  const say = (msg: string) => process.stdout.write(`tether: ${msg}\n`);
  let redis: LocalRedis | undefined;
  let redisUrl = config.redis.url;
  if (!redisUrl && config.redis.mode === 'standalone') {
    // Loaded only here: the launcher that may run apt-get is a development convenience of
    // `npm start` and never part of a worker's (production) code path.
    const { ensureRedisServer, RedisNotInstalledError, startLocalRedis } = await import('./cluster/local-redis.js');
    let binary: string;
    try {
      binary = ensureRedisServer(say);
    } catch (err) {
      if (err instanceof RedisNotInstalledError) fail(err.message);
      throw err;
    }
    redis = await startLocalRedis({ dir: resolve('.tether/redis'), persist: true, binary, ownProcessGroup: true });
    redisUrl = redis.url;
    // Whatever ends the primary (a crash included) takes the redis-server it started along; it
    // no longer shares the primary's process group, so nothing else would.
    const orphan = redis.process;
    process.once('exit', () => orphan.exitCode === null && orphan.signalCode === null && orphan.kill('SIGTERM'));
    say(`started local redis-server (pid ${redis.process.pid}) on ${redisUrl} (data in .tether/redis)`);
  }

  // The primary hands each connection's first bytes to a worker over IPC: Buffers survive that
  // only with advanced serialization (JSON would turn them into plain objects).
  cluster.setupPrimary({ serialization: 'advanced' });
  let stopping = false;
  const front = new Front({
    onState: (label, state) => {
      if (state === 'draining' && !stopping) say(`${label} draining: new sessions go to the other workers`);
    },
  });
  let listening = false;
  const fork = (index: number) => {
    const label = `worker ${index}`;
    // Workers inherit the environment (REDIS_MODE and its variables included); REDIS_URL only
    // when there is one (standalone), else the worker would refuse it next to REDIS_MODE=cluster.
    const worker = cluster.fork({ ...(redisUrl ? { REDIS_URL: redisUrl } : {}), NODE_ID: `${config.nodeId}-w${index}` });
    front.add(worker, label);
    worker.on('message', (msg: { type?: string; state?: string }) => {
      if (msg?.type !== 'tether:front' || msg.state !== 'ready') return;
      say(`${label} (pid ${worker.process.pid}) ready`);
      if (!listening && Object.values(front.states()).filter((s) => s === 'ready').length === config.workers) {
        listening = true;
        front.server.listen({ port: config.port, host: config.host, backlog: config.listenBacklog }, () => {
          say(`cluster of ${config.workers} workers ready on http://${config.host}:${config.port} (Socket.IO namespace /sync). Ctrl-C stops everything.`);
        });
      }
    });
    worker.on('exit', (code, signal) => {
      if (stopping) {
        say(`${label} exited (${signal ?? code})`);
        return;
      }
      say(`${label} exited (${signal ?? code}); restarting it`);
      setTimeout(() => fork(index), 500);
    });
  };
  for (let i = 0; i < config.workers; i++) fork(i);

  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say('stopping workers…');
    front.server.close();
    const workers = Object.values(cluster.workers ?? {});
    // Workers end themselves by SHUTDOWN_TIMEOUT_MS; this only covers one that hangs past it.
    const hard = setTimeout(() => {
      for (const w of workers) if (w && !w.isDead()) w.process.kill('SIGKILL');
    }, config.drain.shutdownTimeoutMs + 5_000);
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
    clearTimeout(hard);
    // Only now: the workers' drains and disconnect handlers needed Redis until their last step.
    if (redis) {
      await redis.stop();
      say('stopped local redis-server');
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
}

const config = loadOrExit();
if (cluster.isPrimary && process.argv.includes('--cluster')) {
  await runPrimary(config);
} else {
  await runWorker(config, cluster.isWorker);
}

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../src/cluster/local-redis.ts';
import { track } from './processes.ts';
import { redisEnv } from './redis.ts';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
export const JWT_SECRET = 'test-secret-0123456789abcdef';
export const SERVICE_TOKEN = 'service-token-0123456789abcdef';

export interface Worker {
  url: string;
  port: number;
  nodeId: string;
  process: ChildProcess;
  /** Lines the worker wrote (pino JSON), for assertions and failure reports. */
  output: string[];
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Small windows so grace, flush and retention scenarios run in seconds, not minutes. */
export const FAST_WINDOWS: Record<string, string> = {
  GRACE_PERIOD_MS: '1500',
  EVICT_WINDOW_MS: '200',
  TAKEOVER_GRACE_MS: '300',
  RECONNECT_FLUSH_MS: '300',
  WS_PING_INTERVAL: '1000',
  WS_PING_TIMEOUT: '1000',
  DRAIN_INTERVAL_MS: '20',
  SHUTDOWN_TIMEOUT_MS: '8000',
  // Every test client comes from 127.0.0.1: the per-address handshake budget would cap the suite
  // at a few hundred connects a minute. Tests of that limit set it themselves.
  HANDSHAKES_PER_ADDRESS_PER_MIN: '0',
};

/** Spawns `node dist/main.js` (one real worker process) and waits until /readyz says ready. */
export async function startWorker(opts: { redisUrl: string; prefix: string; nodeId?: string; port?: number; env?: Record<string, string>; nodeArgs?: string[] }): Promise<Worker> {
  const port = opts.port ?? (await freePort());
  const nodeId = opts.nodeId ?? `w${port}`;
  const child = track(
    spawn(process.execPath, [...(opts.nodeArgs ?? []), MAIN], {
      env: {
        PATH: process.env.PATH ?? '',
        HOST: '127.0.0.1',
        PORT: String(port),
        ...redisEnv(opts.redisUrl),
        KEY_PREFIX: opts.prefix,
        NODE_ID: nodeId,
        JWT_SECRET,
        SERVICE_TOKEN,
        LOG_LEVEL: 'warn',
        ...FAST_WINDOWS,
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const output: string[] = [];
  const collect = (d: Buffer) => output.push(...d.toString().split('\n').filter(Boolean));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const url = `http://127.0.0.1:${port}`;
  const worker: Worker = {
    url,
    port,
    nodeId,
    process: child,
    output,
    kill(signal = 'SIGTERM') {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      });
    },
  };
  // Generous: several workers starting at once on a loaded 2-core machine take a while (a cluster
  // client connects to every master, and BullMQ's workers each to all of them).
  const deadline = Date.now() + 60_000;
  let last = 'not listening';
  for (;;) {
    if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}:\n${output.join('\n')}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return worker;
      last = `/readyz ${res.status} ${await res.text()}`;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await worker.kill('SIGKILL');
      throw new Error(`worker on ${port} not ready in time (${last}):\n${output.join('\n')}`);
    }
    await sleep(50);
  }
}

export async function startWorkers(n: number, opts: Parameters<typeof startWorker>[0]): Promise<Worker[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => startWorker({ ...opts, nodeId: `${opts.nodeId ?? 'w'}${i}` })));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (!failed) return started.map((r) => (r as PromiseFulfilledResult<Worker>).value);
  // The caller gets no workers to kill: the ones that did start would keep the test process
  // alive (their pipes) until the file's timeout.
  await Promise.all(started.map((r) => (r.status === 'fulfilled' ? r.value.kill('SIGKILL') : undefined)));
  throw failed.reason;
}

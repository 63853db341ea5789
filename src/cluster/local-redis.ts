import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';

/**
 * Starts a private redis-server on a free loopback port, for `npm start` without REDIS_URL and for
 * the test suite. Not used in deployments (they point REDIS_URL at their own Redis).
 */
export interface LocalRedis {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export class RedisNotInstalledError extends Error {}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function findRedisServer(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/**
 * Installs redis-server with the OS package manager when that is possible without asking anyone
 * (root with apt-get). Returns the binary path or throws a one-sentence instruction.
 */
export function ensureRedisServer(log: (msg: string) => void): string {
  const found = findRedisServer();
  if (found) return found;
  const isRoot = process.getuid?.() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
  if (isRoot && hasApt) {
    log('redis-server not found: installing it with apt-get (Debian package redis-server)…');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    const r = spawnSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'inherit', env });
    const after = findRedisServer();
    if (r.status === 0 && after) return after;
  }
  throw new RedisNotInstalledError(
    'redis-server is not installed: install Redis 7 (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_URL to an existing Redis.',
  );
}

export interface LocalRedisOptions {
  dir: string;
  persist: boolean;
  binary?: string;
  port?: number;
  /**
   * Start it in its own process group. A terminal's Ctrl-C signals the whole foreground group:
   * sharing the primary's, redis-server would stop at once, under workers that still need it for
   * their drain; in its own group it stops when the primary says so, after the workers.
   */
  ownProcessGroup?: boolean;
}

export async function startLocalRedis(opts: LocalRedisOptions): Promise<LocalRedis> {
  const binary = opts.binary ?? findRedisServer();
  if (!binary) throw new RedisNotInstalledError('redis-server is not installed');
  mkdirSync(opts.dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', opts.dir, '--daemonize', 'no', '--loglevel', 'warning', '--logfile', ''];
  if (opts.persist) args.push('--save', '60 1', '--appendonly', 'yes');
  else args.push('--save', '', '--appendonly', 'no');
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: opts.ownProcessGroup ?? false });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `redis://127.0.0.1:${port}`;

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr.trim()}`);
    const probe = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 500 } });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      await probe.quit();
      break;
    } catch {
      if (probe.isOpen) await probe.disconnect().catch(() => undefined);
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not answer on port ${port}: ${stderr.trim()}`);
      }
      await sleep(50);
    }
  }

  let stopped: Promise<void> | undefined;
  return {
    url,
    port,
    process: child,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      });
      return stopped;
    },
  };
}

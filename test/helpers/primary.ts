import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { freePort } from '../../src/cluster/local-redis.ts';
import { track } from './processes.ts';
import { JWT_SECRET } from './workers.ts';
import { until } from './clients.ts';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** `node dist/main.js --cluster`, what `npm start` runs: the primary, its workers, its own redis-server. */
export interface Primary {
  url: string;
  process: ChildProcess;
  /** Everything the primary and its workers wrote. */
  output(): string;
  /** pid of the live process behind "worker <index>" (the newest one after a restart). */
  workerPid(index: number): number;
  /** Resolves once "worker <index>" announced itself ready `times` times in all (1 = first start). */
  workerReady(index: number, times: number, timeoutMs?: number): Promise<number>;
  redisPid(): number | undefined;
  /** SIGKILLs whatever is left: primary, workers, redis-server; removes the data directory. */
  kill(): void;
}

/**
 * Starts the primary in its own process group, as a shell runs a foreground job: a test can then
 * deliver a terminal's Ctrl-C with process.kill(-pid, 'SIGINT').
 */
export async function startPrimary(opts: { workers: number; env?: Record<string, string> }): Promise<Primary> {
  const dir = mkdtempSync(join(tmpdir(), 'tether-primary-'));
  const port = await freePort();
  let text = '';
  const child = track(
    spawn(process.execPath, [MAIN, '--cluster'], {
      cwd: dir,
      detached: true,
      // HANDSHAKES_PER_ADDRESS_PER_MIN=0: every test client comes from 127.0.0.1.
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), WORKERS: String(opts.workers), JWT_SECRET, LOG_LEVEL: 'warn', HANDSHAKES_PER_ADDRESS_PER_MIN: '0', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const readyLines = (index: number) => [...text.matchAll(new RegExp(`worker ${index} \\(pid (\\d+)\\) ready`, 'g'))].map((m) => Number(m[1]));
  const primary: Primary = {
    url: `http://127.0.0.1:${port}`,
    process: child,
    output: () => text,
    workerPid(index) {
      const pids = readyLines(index);
      if (pids.length === 0) throw new Error(`worker ${index} never got ready:\n${text}`);
      return pids.at(-1)!;
    },
    async workerReady(index, times, timeoutMs = 30_000) {
      await until(() => readyLines(index).length >= times, timeoutMs, `worker ${index} ready (${times}×); output:\n${text}`);
      return primary.workerPid(index);
    },
    redisPid() {
      const m = /started local redis-server \(pid (\d+)\)/.exec(text);
      return m ? Number(m[1]) : undefined;
    },
    kill() {
      const pids = [child.pid, primary.redisPid()];
      for (let i = 0; i < opts.workers; i++) pids.push(...readyLines(i));
      for (const pid of pids) {
        try {
          if (pid) process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await until(() => text.includes('ready on') || child.exitCode !== null, 60_000, `cluster ready (output so far: ${text})`);
  } catch (err) {
    primary.kill();
    throw err;
  }
  if (child.exitCode !== null) {
    primary.kill();
    throw new Error(`primary exited with ${child.exitCode}:\n${text}`);
  }
  return primary;
}

export interface Handshake {
  /** How the Engine.IO handshake was answered: the open packet, an HTTP status, or not at all. */
  answer: 'open' | `http-${number}` | 'closed' | 'error' | 'none';
  answerMs: number;
  retryAfter?: string;
  /** The `session` event arrived (the namespace connect was processed). */
  session: boolean;
  /**
   * `server:shutdown` instead: the worker began draining between the Engine.IO handshake and the
   * namespace connect, and tells the client to connect again (it closes the transport).
   */
  shutdown?: boolean;
  /** What ended an attempt that was served but got neither: close, error or the timeout. */
  ended?: 'close' | 'error' | 'timeout';
  endedMs?: number;
  sessionMs?: number;
}

/**
 * One raw websocket client: Engine.IO handshake, `40/sync,{}`, `session`. With `splitMs` its HTTP
 * upgrade request leaves in two TCP segments that far apart, as over a slow or segmenting network:
 * the bytes a front receives after it has decided where a connection goes.
 */
export function rawHandshake(url: string, opts: { splitMs?: number; timeoutMs?: number } = {}): Promise<Handshake> {
  const started = performance.now();
  const wsUrl = `${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
  return new Promise((resolve) => {
    let result: Handshake | undefined;
    const createConnection = opts.splitMs === undefined ? undefined : (o: { host?: string; port?: number | string }) => splitFirstWrite(o, opts.splitMs!);
    const ws = new WebSocket(wsUrl, createConnection ? { createConnection: createConnection as never } : {});
    const finish = () => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve(result ?? { answer: 'none', answerMs: performance.now() - started, session: false });
    };
    /** The first answer to the handshake; anything but the open packet ends the attempt. */
    const answered = (answer: Handshake['answer'], retryAfter?: string) => {
      if (!result) result = { answer, answerMs: performance.now() - started, session: false, ...(retryAfter ? { retryAfter } : {}) };
      if (answer !== 'open') finish();
    };
    const ended = (how: 'close' | 'error' | 'timeout') => {
      if (result?.answer === 'open') Object.assign(result, { ended: how, endedMs: performance.now() - started });
    };
    const timer = setTimeout(() => (ended('timeout'), finish()), opts.timeoutMs ?? 10_000);
    ws.on('unexpected-response', (_req, res) => answered(`http-${res.statusCode ?? 0}`, res.headers['retry-after']));
    ws.on('error', () => (ended('error'), answered('error')));
    ws.on('close', () => (ended('close'), answered('closed')));
    ws.on('message', (raw: Buffer) => {
      const frame = raw.toString();
      if (frame.startsWith('0')) {
        answered('open');
        ws.send('40/sync,{}');
      } else if (frame === '2') ws.send('3');
      else if (frame.startsWith('42/sync,["server:shutdown"') && result) {
        result.shutdown = true;
        finish();
      } else if (frame.startsWith('42/sync,["session"') && result) {
        result.session = true;
        result.sessionMs = performance.now() - started;
        finish();
      }
    });
  });
}

function splitFirstWrite(o: { host?: string; port?: number | string }, splitMs: number): Socket {
  const socket = netConnect({ host: o.host ?? '127.0.0.1', port: Number(o.port) });
  socket.setNoDelay(true);
  const write = socket.write.bind(socket) as (data: Buffer, cb?: () => void) => boolean;
  socket.write = ((data: string | Uint8Array, ...rest: unknown[]) => {
    socket.write = write as typeof socket.write;
    const bytes = Buffer.from(data);
    const cut = Math.floor(bytes.length / 2);
    write(bytes.subarray(0, cut));
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    setTimeout(() => socket.writable && write(bytes.subarray(cut), cb), splitMs);
    return true;
  }) as typeof socket.write;
  return socket;
}

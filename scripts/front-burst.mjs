#!/usr/bin/env node
// Raw websocket Socket.IO connects through `node dist/main.js --cluster` (what `npm start` runs),
// counting every handshake that was not answered and every namespace connect that never got its
// `session`. Issue 11 point 1: the embedded front must lose none, and answer every handshake
// within 1 s during a drain or a respawn (served, or 503 + retry-after).
//
//   node scripts/front-burst.mjs [--connects 2000 --concurrency 500]     a burst (default)
//                                [--every 20 --for 6000]                   or a steady stream
//                                [--signal SIGTERM|SIGKILL --signal-at 1000]  to worker 0, mid-run
//                                [--workers 2] [--split-ms N] [--timeout 15000] [--json out.json]
//                                [--target http://127.0.0.1:3000 | --main path/to/dist/main.js]
//
// Without --target it starts its own `node dist/main.js --cluster` (own redis-server, WORKERS
// workers) in a temporary directory and stops it at the end. --split-ms N: each client writes its
// upgrade request in two TCP segments N ms apart. Exit code 1 when a connect was lost.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const every = opt('every', undefined) === undefined ? undefined : Number(opt('every'));
const streamMs = Number(opt('for', 6000));
const connects = Number(opt('connects', 2000));
const concurrency = Number(opt('concurrency', 500));
const workers = Number(opt('workers', 2));
const timeoutMs = Number(opt('timeout', 15_000));
const splitMs = Number(opt('split-ms', 0));
const signal = opt('signal', undefined);
const signalAt = Number(opt('signal-at', 1000));
const jsonOut = opt('json', undefined);
let target = opt('target', undefined);
// --main: another build's dist/main.js (before/after comparisons).
const MAIN = opt('main', fileURLToPath(new URL('../dist/main.js', import.meta.url)));
if (signal && target) throw new Error('--signal needs the cluster this script starts (no --target)');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'tether-burst-'));
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, '--cluster'], {
    cwd: dir,
    // Every client of this script comes from one address: no per-address handshake limit.
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', WORKERS: String(workers), JWT_SECRET: 'burst-secret-0123456789abcdef', LOG_LEVEL: 'warn', HANDSHAKES_PER_ADDRESS_PER_MIN: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const deadline = Date.now() + 60_000;
  while (!output.includes('ready on')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`cluster did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    workerPid(index) {
      const pids = [...output.matchAll(new RegExp(`worker ${index} \\(pid (\\d+)\\) ready`, 'g'))];
      if (pids.length === 0) throw new Error(`no "worker ${index} (pid …) ready" line:\n${output}`);
      return Number(pids.at(-1)[1]);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const hard = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(hard);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP connection whose first write (the HTTP upgrade request) leaves in two segments. */
function splitFirstWrite(options) {
  const socket = netConnect({ host: options.host, port: Number(options.port) });
  socket.setNoDelay(true);
  const write = socket.write;
  socket.write = function (data, ...rest) {
    socket.write = write;
    const bytes = Buffer.from(data);
    const cut = Math.floor(bytes.length / 2);
    write.call(socket, bytes.subarray(0, cut));
    setTimeout(() => socket.writable && write.call(socket, bytes.subarray(cut), ...rest), splitMs);
    return true;
  };
  return socket;
}

/**
 * One raw client: Engine.IO handshake → `40/sync,{}` → `session`. Outcomes: session,
 * server:shutdown (a draining worker asks it to reconnect), http-<status>, and the losses:
 * open-only (open packet, then nothing), closed / error before any answer, none (no answer at all).
 */
function connectOnce(wsUrl) {
  const started = performance.now();
  return new Promise((resolve) => {
    let answerMs;
    const ws = new WebSocket(wsUrl, splitMs > 0 ? { createConnection: splitFirstWrite } : {});
    const done = (outcome, extra = {}) => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve({ outcome, answerMs: answerMs ?? performance.now() - started, ms: performance.now() - started, ...extra });
    };
    const timer = setTimeout(() => done(answerMs === undefined ? 'none' : 'open-only'), timeoutMs);
    ws.on('unexpected-response', (_req, res) => done(`http-${res.statusCode}`, { retryAfter: res.headers['retry-after'] }));
    ws.on('error', (err) => done(answerMs === undefined ? 'error' : 'open-only', { error: err.code ?? err.message }));
    ws.on('close', () => done(answerMs === undefined ? 'closed' : 'open-only'));
    ws.on('message', (raw) => {
      const frame = raw.toString();
      if (frame.startsWith('0')) {
        answerMs = performance.now() - started;
        ws.send('40/sync,{}');
      } else if (frame === '2') ws.send('3');
      else if (frame.startsWith('42/sync,["session"')) done('session');
      else if (frame.startsWith('42/sync,["server:shutdown"')) done('server:shutdown');
      else if (frame.startsWith('44/sync,')) done('connect_error', { error: frame.slice(8) });
    });
  });
}

function pct(sorted, p) {
  return sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]) : null;
}
const stats = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return { p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s.length ? Math.round(s.at(-1)) : null };
};

const cluster = target ? null : await startCluster();
target ??= cluster.url;
const wsUrl = `${target.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
const results = [];
const t0 = performance.now();
let signalled;
try {
  if (signal) {
    const pid = cluster.workerPid(0);
    setTimeout(() => {
      signalled = performance.now() - t0;
      process.kill(pid, signal);
    }, signalAt);
  }
  if (every !== undefined) {
    const pending = [];
    while (performance.now() - t0 < streamMs) {
      const at = performance.now() - t0;
      pending.push(connectOnce(wsUrl).then((r) => results.push({ ...r, at })));
      await new Promise((r) => setTimeout(r, every));
    }
    await Promise.all(pending);
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, connects) }, async () => {
        while (next < connects) {
          next++;
          const at = performance.now() - t0;
          results.push({ ...(await connectOnce(wsUrl)), at });
        }
      }),
    );
  }
} finally {
  await cluster?.stop();
}
const wallMs = performance.now() - t0;
const byOutcome = {};
for (const r of results) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
const answered = (r) => r.outcome === 'session' || r.outcome === 'server:shutdown' || (r.outcome === 'http-503' && r.retryAfter);
const lost = results.filter((r) => !answered(r));
const afterSignal = signalled === undefined ? [] : results.filter((r) => r.at >= signalled);
const summary = {
  target,
  mode: every !== undefined ? `stream: one every ${every} ms for ${streamMs} ms` : `burst: ${connects} connects, ${concurrency} at a time`,
  workers: cluster ? workers : undefined,
  splitMs: splitMs || undefined,
  signal: signal ? `${signal} to worker 0 at ${Math.round(signalled ?? NaN)} ms` : undefined,
  handshakes: results.length,
  outcomes: byOutcome,
  lost: lost.length,
  answerMs: stats(results.map((r) => r.answerMs)),
  answerMsAfterSignal: signal ? { n: afterSignal.length, ...stats(afterSignal.map((r) => r.answerMs)), over1s: afterSignal.filter((r) => r.answerMs > 1000).length } : undefined,
  sessionMs: stats(results.filter((r) => r.outcome === 'session').map((r) => r.ms)),
  wallMs: Math.round(wallMs),
};
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ summary, results }, null, 2));
process.exit(lost.length === 0 ? 0 : 1);

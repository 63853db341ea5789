#!/usr/bin/env node
// A burst of raw websocket Socket.IO connects against `node dist/main.js --cluster` (what `npm start`
// runs), counting every connect that never got its `session` event. Issue 11 point 1: the embedded
// front must lose none.
//
//   node scripts/front-burst.mjs [--connects 2000] [--concurrency 500] [--workers 2] [--timeout 15000]
//                                [--split-ms 0] [--target http://127.0.0.1:3000 | --main path/to/dist/main.js]
//                                [--json out.json]
//
// Without --target it starts its own `node dist/main.js --cluster` (own redis-server, WORKERS
// workers) in a temporary directory and stops it at the end. Exit code 1 when a connect was lost.
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
const connects = Number(opt('connects', 2000));
const concurrency = Number(opt('concurrency', 500));
const workers = Number(opt('workers', 2));
const timeoutMs = Number(opt('timeout', 15_000));
const jsonOut = opt('json', undefined);
// > 0: every client writes its upgrade request in two TCP segments this many ms apart (a slow or
// segmenting network), which is how bytes arriving during the hand-off show up.
const splitMs = Number(opt('split-ms', 0));
let target = opt('target', undefined);

// --main: another build's dist/main.js (before/after comparisons).
const MAIN = opt('main', fileURLToPath(new URL('../dist/main.js', import.meta.url)));

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
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', WORKERS: String(workers), JWT_SECRET: 'burst-secret-0123456789abcdef', LOG_LEVEL: 'warn' },
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
    const text = Buffer.from(data);
    const cut = Math.floor(text.length / 2);
    write.call(socket, text.subarray(0, cut));
    setTimeout(() => socket.writable && write.call(socket, text.subarray(cut), ...rest), splitMs);
    return true;
  };
  return socket;
}

/** One raw client: Engine.IO open → `40/sync,{}` → `session`. Resolves with how it ended. */
function connectOnce(wsUrl) {
  const started = performance.now();
  return new Promise((resolve) => {
    let stage = 'handshake';
    const ws = new WebSocket(wsUrl, splitMs > 0 ? { createConnection: splitFirstWrite } : {});
    const done = (outcome, extra = {}) => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve({ outcome, stage, ms: performance.now() - started, ...extra });
    };
    const timer = setTimeout(() => done('lost'), timeoutMs);
    ws.on('unexpected-response', (_req, res) => done(`http-${res.statusCode}`, { retryAfter: res.headers['retry-after'] }));
    ws.on('error', (err) => done('error', { error: err.code ?? err.message }));
    ws.on('close', () => done('closed'));
    ws.on('message', (raw) => {
      const frame = raw.toString();
      if (frame.startsWith('0')) {
        stage = 'namespace-connect';
        ws.send('40/sync,{}');
      } else if (frame === '2') ws.send('3');
      else if (frame.startsWith('42/sync,["session"')) done('session');
      else if (frame.startsWith('44/sync,')) done('connect_error', { error: frame.slice(8) });
    });
  });
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

const cluster = target ? null : await startCluster();
target ??= cluster.url;
const wsUrl = `${target.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`;
const results = [];
const t0 = performance.now();
try {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, connects) }, async () => {
      while (next < connects) {
        next++;
        results.push(await connectOnce(wsUrl));
      }
    }),
  );
} finally {
  await cluster?.stop();
}
const wallMs = performance.now() - t0;
const byOutcome = {};
for (const r of results) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
const lostAt = {};
for (const r of results.filter((r) => r.outcome === 'lost')) lostAt[r.stage] = (lostAt[r.stage] ?? 0) + 1;
const ms = results.filter((r) => r.outcome === 'session').map((r) => r.ms).sort((a, b) => a - b);
const summary = {
  target,
  connects,
  concurrency,
  workers: cluster ? workers : undefined,
  outcomes: byOutcome,
  lost: byOutcome.lost ?? 0,
  lostAtStage: lostAt,
  sessionMs: { p50: Math.round(pct(ms, 50)), p95: Math.round(pct(ms, 95)), p99: Math.round(pct(ms, 99)), max: Math.round(ms.at(-1) ?? NaN) },
  wallMs: Math.round(wallMs),
};
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ summary, results }, null, 2));
process.exit(summary.lost === 0 && (byOutcome.session ?? 0) === connects ? 0 : 1);

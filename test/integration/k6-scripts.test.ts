/**
 * The k6 load-test scripts, run unmodified under Node through the k6 shim
 * (load-tests/node/run-k6-script.mjs), against a REAL Tether worker (dist/main.js) and Redis.
 * Proves the pure Engine.IO/Socket.IO library speaks the server's actual wire protocol: connect,
 * `session`, HTTP room creation with a self-signed HS256 JWT, room:join, room:publish, the
 * room:event broadcast with its seq, clientMsgId dedup, engine.io pings, and the reconnect path
 * (sessionToken + lastSeq + room:rejoin with replay) — and that thresholds decide the exit code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorker, JWT_SECRET, FAST_WINDOWS, type Worker } from '../helpers/workers.ts';
import { track } from '../helpers/processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER = join(ROOT, 'load-tests/node/run-k6-script.mjs');
const script = (name: string) => join(ROOT, 'load-tests/k6', name);

interface Summary {
  metrics: Record<string, { type: string; values: Record<string, number>; thresholds?: Record<string, { ok: boolean; actual: number }> }>;
  checks: Record<string, { passes: number; fails: number }>;
  thresholdsOk: boolean;
  iterations: number;
  interrupted: number;
  scriptErrors: number;
}

let redis: TestRedis;
let worker: Worker;
let outDir: string;

/** Runs a k6 script through the shim; bounded by --max-duration and a kill timer. */
async function runK6(file: string, env: Record<string, string>, maxSeconds = 60): Promise<{ code: number | null; output: string; summary: Summary | null }> {
  const summaryPath = join(outDir, `${Math.random().toString(36).slice(2)}.json`);
  const args = [RUNNER, file, '--summary-export', summaryPath, '--max-duration', `${maxSeconds}s`];
  for (const [k, v] of Object.entries({ TARGET: worker.url, JWT_SECRET, ...env })) args.push('-e', `${k}=${v}`);
  // Only PATH from our environment: the script's knobs come from -e alone.
  const child = track(spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), (maxSeconds + 15) * 1000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(killer);
  let summary: Summary | null = null;
  try {
    summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as Summary;
  } catch {
    summary = null;
  }
  return { code, output, summary };
}

function failedChecks(s: Summary): string[] {
  return Object.entries(s.checks)
    .filter(([, c]) => c.fails > 0)
    .map(([name, c]) => `${name} (${c.fails} failed)`);
}

describe('k6 scripts through the Node shim against a real worker', () => {
  before(async () => {
    outDir = mkdtempSync(join(tmpdir(), 'tether-k6-'));
    redis = await startRedis();
    // FAST_WINDOWS: pings every 1 s, grace 1.5 s, presence flush 0.3 s.
    worker = await startWorker({ redisUrl: redis.url, prefix: redis.prefix, env: { PUBLISH_RATE_PER_SEC: '50', PUBLISH_BURST: '100' } });
    assert.equal(FAST_WINDOWS.WS_PING_INTERVAL, '1000');
  });

  after(async () => {
    await worker?.kill('SIGTERM');
    await redis?.stop();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it('smoke: session, HTTP room, join, publish + dedup, broadcast with seq, pings, rejoin with replay', async () => {
    const r = await runK6(script('smoke.js'), { HOLD: '3500ms', MIN_PINGS: '2' });
    assert.ok(r.summary, `no summary:\n${r.output}`);
    assert.deepEqual(failedChecks(r.summary), [], r.output);
    assert.equal(r.code, 0, r.output);
    for (const name of [
      'POST /v1/rooms -> 2xx',
      'session: sessionToken issued',
      'join: self is us',
      'publish ack: seq above the join seq',
      'publish resend: duplicate=true with the original seq',
      'broadcast room:event has roomId, seq, from, ts',
      'answered the minimum engine.io pings',
      'rejoin: recovered',
      'rejoin: missed event replayed before the ack',
      'rejoin: no seq gaps',
    ]) {
      assert.ok(r.summary.checks[name] && r.summary.checks[name].passes > 0 && r.summary.checks[name].fails === 0, `check ${name}: ${JSON.stringify(r.summary.checks[name])}`);
    }
    assert.ok(r.summary.metrics.tether_smoke_broadcasts!.values.count! >= 2, 'each client saw the other one\'s broadcast');
    assert.ok(r.summary.metrics.tether_smoke_pings!.values.count! >= 4, 'both clients answered server pings');
    assert.equal(r.summary.iterations, 2);
    assert.equal(r.summary.interrupted, 0);
  });

  it('reconnect-storm: every client resumes its session, recovers missed events, sees batched presence', async () => {
    // DOWNTIME + JITTER stay well inside the worker's 1.5 s grace period.
    const r = await runK6(script('reconnect-storm.js'), { VUS: '12', ROOMS: '3', WARMUP: '3s', DOWNTIME: '400ms', JITTER: '200ms', GAP_EVENTS: '3', OBSERVE: '1500ms' });
    assert.ok(r.summary, `no summary:\n${r.output}`);
    assert.equal(r.code, 0, r.output);
    const m = r.summary.metrics;
    assert.equal(m.tether_storm_rejoin_ok!.values.rate, 1);
    assert.equal(m.tether_storm_recovered!.values.rate, 1);
    assert.equal(m.tether_storm_session_resumed!.values.rate, 1);
    assert.equal(m.tether_storm_rejoin_duration!.values.count, 9, '12 clients - 3 anchors reconnect');
    assert.equal(m.tether_storm_events_missing!.values.count, 0);
    assert.ok(m.tether_storm_missed_recovered!.values.min! >= 3, `each client got the anchors' 3 gap events: ${JSON.stringify(m.tether_storm_missed_recovered!.values)}`);
    assert.ok(m.tether_storm_presence_msgs!.values['p(95)']! <= 3, 'presence is batched, not one message per returning client');
  });

  it('broadcast-fanout: listeners receive every publish with a seq, no gaps', async () => {
    const r = await runK6(script('broadcast-fanout.js'), { ROOMS: '2', LISTENERS: '3', PUBLISHERS: '1', RATE: '5', DURATION: '2s', WARMUP: '2s', DRAIN: '1s' });
    assert.ok(r.summary, `no summary:\n${r.output}`);
    assert.equal(r.code, 0, r.output);
    const m = r.summary.metrics;
    const published = m.tether_published!.values.count!;
    assert.ok(published >= 10, `published ${published}`);
    assert.equal(m.tether_fanout_received!.values.count, published * 3, 'every listener got every message');
    assert.equal(m.tether_fanout_missing!.values.count, 0);
    assert.equal(m.tether_publish_ok!.values.rate, 1);
  });

  it('connect-ramp: ramping VUs connect, join, sync:ping and leave', async () => {
    const r = await runK6(script('connect-ramp.js'), { VUS: '6', ROOMS: '2', RAMP: '1s', HOLD: '2s', RAMP_DOWN: '1s', SESSION: '1500ms', SYNC_EVERY: '500ms', AUTH: 'jwt' });
    assert.ok(r.summary, `no summary:\n${r.output}`);
    assert.equal(r.code, 0, r.output);
    const m = r.summary.metrics;
    assert.ok(m.tether_connect_ok!.values.passes! >= 6);
    assert.equal(m.tether_connect_ok!.values.rate, 1);
    assert.equal(m.tether_join_ok!.values.rate, 1);
    assert.ok(m.tether_sync_rtt!.values.count! > 0);
    assert.equal(m.tether_unexpected_disconnects!.values.count, 0);
  });

  it('soak: steady publishes and syncs, periodic drops that resume without losing an event', async () => {
    // PAUSE stays inside the worker's 1.5 s grace period; several drops per client in 12 s.
    const r = await runK6(script('soak.js'), { VUS: '6', ROOMS: '2', DURATION: '12s', SESSION: '3s', PAUSE: '300ms', PUBLISH_EVERY: '1s', SYNC_EVERY: '1s' });
    assert.ok(r.summary, `no summary:\n${r.output}`);
    assert.equal(r.code, 0, r.output);
    const m = r.summary.metrics;
    assert.ok(m.tether_soak_rejoin_ok!.values.passes! >= 6, `rejoins: ${JSON.stringify(m.tether_soak_rejoin_ok!.values)}`);
    assert.ok(m.tether_soak_event_latency!.values.count! > 0, 'events were published and received');
    assert.equal(m.tether_soak_events_missing!.values.count, 0);
    assert.equal(r.summary.scriptErrors, 0);
  });

  it('a crossed threshold fails the run with k6\'s exit code 99', async () => {
    const r = await runK6(script('connect-ramp.js'), { VUS: '2', ROOMS: '1', RAMP: '500ms', HOLD: '500ms', RAMP_DOWN: '500ms', SESSION: '500ms', SYNC_EVERY: '0', CONNECT_P95_MS: '0' });
    assert.equal(r.code, 99, r.output);
    assert.equal(r.summary?.thresholdsOk, false);
    assert.equal(r.summary?.metrics.tether_session_duration!.thresholds!['p(95)<0']!.ok, false);
  });

  it('a bad JWT secret makes setup() fail (exit 105) with the server\'s error', async () => {
    const r = await runK6(script('smoke.js'), { JWT_SECRET: 'not-the-server-secret-000000' });
    assert.equal(r.code, 105, r.output);
    assert.match(r.output, /INVALID_TOKEN|401/);
  });
});

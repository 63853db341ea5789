// Tether benchmark harness (`npm run bench`). Starts a private redis-server, two app workers per
// target and separate load-generator processes, and runs the same scenarios against Tether and two
// baselines built from public packages only (plain Socket.IO + redis-adapter; Socket.IO connection
// state recovery + redis-streams-adapter). Prints one table per scenario with Tether/baseline
// ratios, PASS/MISS per target, and writes JSON with --json. Loopback only. Every loop is bounded
// in count and time; every child is killed by PID on exit, error or signal.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from 'redis';
import { CpuSampler, installExitHooks, liveChildren, round, spawnTracked } from './lib/procs.mjs';
import { fmt, histPct, mergeHist, pct, ratio, signJwt, sleep, table } from './lib/util.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const PROBE = pathToFileURL(join(HERE, 'lib/probe.mjs')).href;
const GENERATOR = join(HERE, 'gen/generator.mjs');
const ENTRY = {
  tether: join(ROOT, 'dist/main.js'),
  plain: join(HERE, 'baselines/plain.mjs'),
  csr: join(HERE, 'baselines/csr.mjs'),
};
const JWT_SECRET = 'bench-secret-0123456789abcdef';
const SERVICE_TOKEN = 'bench-service-token-0123456789';
const ALL_SCENARIOS = ['idle', 'fanout', 'storm', 'catchup'];
const ALL_TARGETS = ['tether', 'plain', 'csr'];

// ------------------------------------------------------------------ options
function parseArgs(argv) {
  const o = { quick: false, json: null, scenarios: ALL_SCENARIOS, targets: ALL_TARGETS, overrides: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--json') o.json = resolve(val());
    else if (a === '--scenario') o.scenarios = val().split(',');
    else if (a === '--targets') o.targets = val().split(',');
    else if (a.startsWith('--') && a.includes('=')) {
      const [k, v] = a.slice(2).split('=');
      o.overrides[k] = v;
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: npm run bench -- [--quick] [--json out.json] [--scenario idle,fanout,storm,catchup] [--targets tether,plain,csr]\n' +
          '       size overrides: --idle-levels=2000,10000 --fanout-rooms=10 --fanout-members=1000 --fanout-rates=10,20,50\n' +
          '       --storm-clients=10000 --storm-rooms=100 --catchup-clients=1000 --catchup-rooms=10 --catchup-away=1000,30000 --generators=4\n',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const s of o.scenarios) if (!ALL_SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s} (have ${ALL_SCENARIOS.join(', ')})`);
  for (const t of o.targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}`);
  return o;
}

function sizes(quick, ov) {
  const base = quick
    ? {
        generators: 2,
        idleLevels: [200, 500],
        idleRoomSize: 20,
        connectConcurrency: 50,
        fanoutRooms: 2,
        fanoutMembers: 50,
        fanoutRates: [50, 100, 200],
        fanoutStepMs: 2000,
        fanoutSettleMs: 800,
        stormClients: 200,
        stormRooms: 10,
        stormRatePerRoom: 5,
        stormTimeoutMs: 25_000,
        catchupClients: 60,
        catchupRooms: 6,
        catchupRatePerRoom: 5,
        catchupAway: [1000, 3000],
        retentionAwayMs: 2000,
        settleMs: 500,
        flushMs: 1000,
        jitterMs: 1000,
      }
    : {
        generators: 4,
        idleLevels: [2000, 10_000, 20_000],
        idleRoomSize: 20,
        connectConcurrency: 100,
        fanoutRooms: 10,
        fanoutMembers: 1000,
        fanoutRates: [10, 20, 50, 100, 200, 400],
        fanoutStepMs: 5000,
        fanoutSettleMs: 2000,
        stormClients: 10_000,
        stormRooms: 100,
        stormRatePerRoom: 2,
        stormTimeoutMs: 90_000,
        catchupClients: 1000,
        catchupRooms: 10,
        catchupRatePerRoom: 5,
        catchupAway: [1000, 30_000],
        retentionAwayMs: 5000,
        settleMs: 1000,
        flushMs: 3000,
        jitterMs: 1000,
      };
  const list = (v) => v.split(',').map(Number);
  const map = {
    'idle-levels': ['idleLevels', list],
    'fanout-rooms': ['fanoutRooms', Number],
    'fanout-members': ['fanoutMembers', Number],
    'fanout-rates': ['fanoutRates', list],
    'fanout-step-ms': ['fanoutStepMs', Number],
    'storm-clients': ['stormClients', Number],
    'storm-rooms': ['stormRooms', Number],
    'storm-rate': ['stormRatePerRoom', Number],
    'catchup-clients': ['catchupClients', Number],
    'catchup-rooms': ['catchupRooms', Number],
    'catchup-away': ['catchupAway', list],
    generators: ['generators', Number],
  };
  for (const [k, v] of Object.entries(ov)) {
    if (!map[k]) throw new Error(`unknown size override --${k}`);
    base[map[k][0]] = map[k][1](v);
  }
  // Hard bounds: one process cannot hold more sockets than its open-files limit allows.
  const maxTotal = 20_000;
  base.idleLevels = base.idleLevels.map((l) => Math.min(l, maxTotal));
  base.stormClients = Math.min(base.stormClients, maxTotal);
  return base;
}

// ------------------------------------------------------------------ infrastructure
const log = (msg) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const warnings = [];
const warn = (msg) => {
  warnings.push(msg);
  process.stdout.write(`WARNING: ${msg}\n`);
};

let fdLimit = { soft: null, hard: null };
function nodeCmd(args) {
  // Raise the soft open-files limit to the hard one inside the child when they differ.
  if (fdLimit.soft !== null && fdLimit.hard !== null && fdLimit.soft !== fdLimit.hard) {
    return ['sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...args]];
  }
  return [process.execPath, args];
}

async function startRedis(dir, cpu) {
  const bin = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (!bin) throw new Error('redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)');
  const { freePort } = await import(pathToFileURL(join(ROOT, 'dist/cluster/local-redis.js')).href).catch(() => ({ freePort: null }));
  const port = freePort ? await freePort() : 20000 + Math.floor(Math.random() * 20000);
  const child = spawnTracked('redis', bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--maxclients', '20000'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `redis://127.0.0.1:${port}`;
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 1000 } });
  client.on('error', () => undefined);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error('redis-server did not start');
      await sleep(100);
    }
  }
  cpu.watch('redis', child.pid, 'redis');
  return {
    url,
    pid: child.pid,
    client,
    async flush() {
      await client.flushAll();
    },
    async usedMemory() {
      const info = await client.info('memory');
      return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    },
    async stop() {
      await client.quit().catch(() => undefined);
      child.kill('SIGKILL');
    },
  };
}

class Worker {
  constructor(target, idx, ctx, env) {
    this.target = target;
    this.idx = idx;
    this.ctx = ctx;
    this.env = env;
    this.port = null;
    this.child = null;
    this.output = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    const { ctx } = this;
    if (!this.port) this.port = await ctx.freePort();
    const env = {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(this.port),
      REDIS_URL: ctx.redis.url,
      KEY_PREFIX: `b${this.target}`,
      NODE_ID: `${this.target}-w${this.idx}`,
      JWT_SECRET,
      SERVICE_TOKEN,
      LOG_LEVEL: 'warn',
      BENCH_PROBE_DIR: ctx.probeDir,
      ...this.env,
    };
    const [cmd, args] = nodeCmd(['--expose-gc', '--import', PROBE, ENTRY[this.target]]);
    const t0 = performance.now();
    this.child = spawnTracked(`${this.target}-w${this.idx}`, cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (d) => {
      this.output.push(...d.toString().split('\n').filter(Boolean));
      if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
    };
    this.child.stdout.on('data', collect);
    this.child.stderr.on('data', collect);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`${this.target} worker exited with ${this.child.exitCode}:\n${this.output.slice(-20).join('\n')}`);
      try {
        const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.target} worker on ${this.port} not ready in 20s:\n${this.output.slice(-20).join('\n')}`);
      await sleep(50);
    }
    ctx.cpu.watch(`${this.target}-w${this.idx}`, this.child.pid, 'worker');
    return performance.now() - t0;
  }

  /** Sends `signal` and waits (bounded) for the exit. */
  stop(signal = 'SIGKILL', timeoutMs = 30_000) {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((res) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        res();
      });
      child.kill(signal);
    });
  }

  /** GC + memory figures from the preloaded probe (bench/lib/probe.mjs). */
  async probe() {
    const file = join(this.ctx.probeDir, `${this.child.pid}.json`);
    let before = 0;
    try {
      before = JSON.parse(readFileSync(file, 'utf8')).n;
    } catch {
      // first probe
    }
    process.kill(this.child.pid, 'SIGUSR2');
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        const m = JSON.parse(readFileSync(file, 'utf8'));
        if (m.n > before) return m;
      } catch {
        // not written yet
      }
      await sleep(50);
    }
    throw new Error(`memory probe of ${this.target}-w${this.idx} timed out`);
  }
}

class Gen {
  constructor(name, ctx) {
    this.name = name;
    this.ctx = ctx;
    this.pending = new Map();
    this.seq = 0;
  }

  async start() {
    const [cmd, args] = nodeCmd([GENERATOR]);
    this.child = spawnTracked(this.name, cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m) => {
      if (m?.ready) return this.readyResolve?.();
      const p = this.pending.get(m?.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(new Error(`${this.name}: ${m.error}`));
      else p.resolve(m.result);
    });
    this.child.once('exit', (code, sig) => {
      for (const p of this.pending.values()) p.reject(new Error(`${this.name} exited (${code ?? sig})`));
      this.pending.clear();
    });
    await new Promise((res, rej) => {
      this.readyResolve = res;
      setTimeout(() => rej(new Error(`${this.name} did not start`)), 10_000);
    });
    this.ctx.cpu.watch(this.name, this.child.pid, 'generator');
  }

  call(cmd, args = {}, timeoutMs = 180_000) {
    const id = ++this.seq;
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        rej(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: res, reject: rej, timer });
      this.child.send({ id, cmd, args });
    });
  }
}

// ------------------------------------------------------------------ per-target setup
function workerEnv(target, extra = {}) {
  if (target === 'tether') {
    return {
      PUBLISH_RATE_PER_SEC: '100000',
      PUBLISH_BURST: '100000',
      ROOM_MAX_PARTICIPANTS: '100000',
      GRACE_PERIOD_MS: '120000',
      RECONNECT_FLUSH_MS: String(extra.flushMs ?? 3000),
      CATCHUP_MAX_EVENTS: '10000',
      CATCHUP_TTL_MS: String(extra.catchupTtlMs ?? 600_000),
      DRAIN_BATCH_SIZE: '100',
      DRAIN_INTERVAL_MS: '20',
      DRAIN_RECONNECT_JITTER_MS: '1000',
      SHUTDOWN_TIMEOUT_MS: '20000',
    };
  }
  if (target === 'csr') return { CSR_MAX_DISCONNECTION_MS: String(extra.csrMaxMs ?? 120_000) };
  return {};
}

async function startPair(ctx, target, extra) {
  await ctx.redis.flush();
  const workers = [0, 1].map((i) => new Worker(target, i, ctx, workerEnv(target, extra)));
  await Promise.all(workers.map((w) => w.start()));
  return workers;
}

async function stopPair(ctx, workers) {
  await Promise.all(workers.map((w) => w.stop('SIGKILL', 5000)));
  for (const w of workers) ctx.cpu.unwatch(`${w.target}-w${w.idx}`);
}

async function createRooms(url, n) {
  const token = signJwt({ sub: 'bench-host', name: 'bench' }, JWT_SECRET);
  const rooms = [];
  const todo = Array.from({ length: n }, (_, i) => i);
  const one = async () => {
    while (todo.length) {
      todo.pop();
      let lastErr;
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const res = await fetch(`${url}/v1/rooms`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify({ name: 'bench', maxParticipants: 100_000 }),
            signal: AbortSignal.timeout(10_000),
          });
          const body = await res.json();
          if (res.status !== 201) throw new Error(`create room: ${res.status} ${JSON.stringify(body)}`);
          rooms.push(body.id);
          lastErr = null;
          break;
        } catch (e) {
          lastErr = e;
        }
      }
      if (lastErr) throw lastErr;
    }
  };
  await Promise.all(Array.from({ length: Math.min(20, n) }, one));
  return rooms;
}

/** Spreads client specs over the generators; client gi → worker gi%2, room gi%rooms. */
async function connectClients(ctx, target, workers, rooms, from, to, concurrency) {
  const urls = workers.map((w) => w.url);
  const per = ctx.gens.map(() => []);
  for (let gi = from; gi < to; gi++) per[gi % ctx.gens.length].push({ gi, worker: gi % 2, roomId: rooms[gi % rooms.length] });
  const t0 = performance.now();
  const rs = await Promise.all(ctx.gens.map((g, i) => (per[i].length ? g.call('connect', { urls, clients: per[i], concurrency }) : { ok: 0, failed: 0 })));
  const ms = performance.now() - t0;
  const ok = rs.reduce((s, r) => s + r.ok, 0);
  const failed = rs.reduce((s, r) => s + r.failed, 0);
  if (failed) warn(`${target}: ${failed} of ${to - from} clients failed to connect/join (${rs.flatMap((r) => r.errors ?? []).slice(0, 2).join('; ')})`);
  return { ok, failed, ms };
}

async function initGens(ctx, target, jitterMs) {
  await Promise.all([...ctx.gens, ctx.pubGen].map((g) => g.call('init', { target, reconnectJitterMs: jitterMs })));
}

async function closeGens(ctx) {
  await Promise.all([...ctx.gens, ctx.pubGen].map((g) => g.call('closeAll', {}, 30_000).catch(() => undefined)));
}

function cpuPhase(ctx, name) {
  ctx.cpu.phase(name);
  return () => {
    ctx.cpu.endPhase();
    const rep = ctx.cpu.report()[name] ?? {};
    for (const [proc, e] of Object.entries(rep)) {
      if (e.role === 'generator' && e.maxPct > 90) warn(`load generator ${proc} reached ${e.maxPct}% of a core in ${name}: its numbers may be generator-bound`);
    }
    return rep;
  };
}

// ------------------------------------------------------------------ scenario: idle
async function scenarioIdle(ctx, target) {
  const S = ctx.sizes;
  const workers = await startPair(ctx, target, {});
  const done = cpuPhase(ctx, `idle:${target}`);
  try {
    await initGens(ctx, target, S.jitterMs);
    // Warm-up: a few connections come and go first, so lazy initialisation (JIT, pools, first
    // Lua loads) is not billed to the measured connections.
    const warmRooms = await createRooms(workers[0].url, 2);
    await connectClients(ctx, target, workers, warmRooms, 0, 40, 20);
    await closeGens(ctx);
    await sleep(S.settleMs);
    const base = await Promise.all(workers.map((w) => w.probe()));
    const baseRedis = await ctx.redis.usedMemory();
    const levels = [];
    let connected = 0;
    let rooms = [];
    for (const level of S.idleLevels) {
      const needRooms = Math.ceil(level / S.idleRoomSize);
      if (rooms.length < needRooms) rooms = rooms.concat(await createRooms(workers[0].url, needRooms - rooms.length));
      const r = await connectClients(ctx, target, workers, rooms, connected, level, S.connectConcurrency);
      connected += r.ok;
      await sleep(S.settleMs);
      const now = await Promise.all(workers.map((w) => w.probe()));
      const redisMem = await ctx.redis.usedMemory();
      const dRss = now.reduce((s, m) => s + m.rss, 0) - base.reduce((s, m) => s + m.rss, 0);
      const dHeap = now.reduce((s, m) => s + m.heapUsed, 0) - base.reduce((s, m) => s + m.heapUsed, 0);
      levels.push({
        connections: connected,
        failed: r.failed,
        connectPerSec: round(r.ok / (r.ms / 1000)),
        rssPerConnKB: round(Math.max(0, dRss) / connected / 1024, 2),
        heapPerConnKB: round(Math.max(0, dHeap) / connected / 1024, 2),
        redisPerConnKB: round(Math.max(0, redisMem - baseRedis) / connected / 1024, 2),
        workerRssMB: now.map((m) => round(m.rss / 1048576)),
      });
      log(`  idle ${target}: ${connected} conns, ${levels.at(-1).rssPerConnKB} KB RSS/conn, ${levels.at(-1).heapPerConnKB} KB heap/conn, ${levels.at(-1).connectPerSec} conn/s`);
      if (connected < level * 0.5) {
        warn(`${target}: idle stopped at ${connected} connections (half of level ${level} failed)`);
        break;
      }
    }
    return { levels, last: levels.at(-1), cpu: done() };
  } finally {
    await closeGens(ctx);
    await stopPair(ctx, workers);
  }
}

// ------------------------------------------------------------------ scenario: fanout
async function scenarioFanout(ctx, target) {
  const S = ctx.sizes;
  const workers = await startPair(ctx, target, {});
  const steps = [];
  let done;
  try {
    await initGens(ctx, target, S.jitterMs);
    const rooms = await createRooms(workers[0].url, S.fanoutRooms);
    const total = S.fanoutRooms * S.fanoutMembers;
    const c = await connectClients(ctx, target, workers, rooms, 0, total, S.connectConcurrency);
    const membersPerRoom = {};
    // Client gi is in room gi % rooms; failed connects are rare and reported as warnings.
    for (let gi = 0; gi < total; gi++) membersPerRoom[rooms[gi % rooms.length]] = (membersPerRoom[rooms[gi % rooms.length]] ?? 0) + 1;
    const receivers = c.ok;
    await ctx.pubGen.call('pubReset');
    await ctx.pubGen.call('pubConnect', { urls: workers.map((w) => w.url), rooms });
    await sleep(500);
    done = cpuPhase(ctx, `fanout:${target}`);
    for (let k = 0; k < S.fanoutRates.length; k++) {
      const rate = S.fanoutRates[k];
      await Promise.all(ctx.gens.map((g) => g.call('countStep', { step: k })));
      const t0 = performance.now();
      await ctx.pubGen.call('pubStart', { mode: 'socket', rooms, ratePerSec: rate, step: k });
      await sleep(S.fanoutStepMs);
      await ctx.pubGen.call('pubStop');
      const pubSec = (performance.now() - t0) / 1000;
      const drained = await ctx.pubGen.call('pubDrain', { timeoutMs: 10_000 });
      await sleep(S.fanoutSettleMs);
      const stats = await Promise.all(ctx.gens.map((g) => g.call('stepStats', { step: k })));
      let expected = 0;
      let published = 0;
      const byStep = drained.publishedByStep[k] ?? {};
      for (const r of rooms) {
        const n = byStep[r] ?? 0;
        published += n;
        expected += n * membersPerRoom[r];
      }
      const hist = {};
      let delivered = 0;
      for (const s of stats) {
        delivered += s.delivered;
        mergeHist(hist, s.hist);
      }
      const lost = Math.max(0, expected - delivered) + drained.errors;
      const achieved = published / pubSec;
      const step = {
        ratePerSec: rate,
        achievedPublishPerSec: round(achieved),
        published,
        expected,
        delivered,
        deliveredPerSec: round(delivered / pubSec),
        lost,
        publishErrors: drained.errors,
        p50Ms: histPct(hist, 50),
        p99Ms: histPct(hist, 99),
        maxMs: histPct(hist, 100),
      };
      step.pass = step.p99Ms !== null && step.p99Ms < 250 && lost === 0 && achieved >= rate * 0.9;
      steps.push(step);
      log(`  fanout ${target}: ${rate}/s → ${step.deliveredPerSec} delivered/s, p50 ${step.p50Ms} ms, p99 ${step.p99Ms} ms, lost ${lost}${step.pass ? '' : '  (over the limit: stop stepping)'}`);
      if (!step.pass) break;
    }
    const passing = steps.filter((s) => s.pass);
    const best = passing.at(-1) ?? null;
    return {
      rooms: S.fanoutRooms,
      membersPerRoom: S.fanoutMembers,
      receivers,
      steps,
      capacityPublishPerSec: best?.ratePerSec ?? 0,
      capacityDeliveredPerSec: best?.deliveredPerSec ?? 0,
      p50AtCapacityMs: best?.p50Ms ?? null,
      p99AtCapacityMs: best?.p99Ms ?? null,
      cpu: done?.(),
    };
  } finally {
    await ctx.pubGen.call('pubStop').catch(() => undefined);
    await closeGens(ctx);
    await stopPair(ctx, workers);
  }
}

// ------------------------------------------------------------------ storm helpers
function mergeFinal(parts) {
  const m = { affected: 0, rejoined: 0, recovered: 0, snapshot: 0, complete: 0, rejoinMs: [], completeMs: [], missedDelivered: 0, lostAffected: 0, lostUnaffected: 0, dups: 0, presence: 0, rejoinErrors: 0, silentLoss: 0, errors: [] };
  m.phaseConnect = [];
  m.phaseRejoin = [];
  m.attempts = 0;
  for (const p of parts) {
    m.phaseConnect.push(...(p.phase?.connect ?? []));
    m.phaseRejoin.push(...(p.phase?.rejoin ?? []));
    m.attempts += p.phase?.attempts ?? 0;
    m.seqLag = (m.seqLag ?? 0) + (p.phase?.seqLag ?? 0);
    m.dupClients = (m.dupClients ?? 0) + (p.phase?.dupClients ?? 0);
    for (const k of ['affected', 'rejoined', 'recovered', 'snapshot', 'complete', 'rejoinMs', 'completeMs', 'missedDelivered', 'lostAffected', 'lostUnaffected', 'dups', 'presence', 'presenceReplayed', 'rejoinErrors', 'silentLoss', 'errors']) {
      m[k] ??= 0;
      if (Array.isArray(m[k])) m[k].push(...(p[k] ?? []));
      else m[k] += p[k] ?? 0;
    }
  }
  for (const k of ['rejoinMs', 'completeMs', 'phaseConnect', 'phaseRejoin']) m[k].sort((a, b) => a - b);
  return m;
}

function summarize(m, expectedAffected) {
  const affected = m.affected;
  // Time until p% of the *affected* clients got there: the k-th fastest, k = ceil(p% × affected).
  const at = (arr, p) => {
    const k = Math.ceil((p / 100) * affected);
    return affected && arr.length >= k ? arr[k - 1] : null;
  };
  const missedPublished = m.missedDelivered + m.lostAffected;
  return {
    affected,
    expectedAffected,
    rejoinedPct: affected ? round((100 * m.rejoined) / affected) : 0,
    completePct: affected ? round((100 * m.complete) / affected) : 0,
    timeTo99RejoinedMs: at(m.rejoinMs, 99),
    timeTo100RejoinedMs: at(m.rejoinMs, 100),
    timeTo99CompleteMs: at(m.completeMs, 99),
    timeTo100CompleteMs: at(m.completeMs, 100),
    recoveredWithoutSnapshotPct: affected ? round((100 * m.recovered) / affected) : 0,
    snapshots: m.snapshot,
    presenceMessages: m.presence,
    presenceReplayed: m.presenceReplayed,
    reconnectMsP50: pct(m.phaseConnect, 50),
    reconnectMsMax: pct(m.phaseConnect, 100),
    rejoinAckMsP50: pct(m.phaseRejoin, 50),
    rejoinAckMsMax: pct(m.phaseRejoin, 100),
    connectAttempts: m.attempts,
    seqLagAtRejoin: m.seqLag,
    duplicateClients: m.dupClients,
    missedPublished,
    missedDelivered: m.missedDelivered,
    missedDeliveredPct: missedPublished ? round((100 * m.missedDelivered) / missedPublished) : 100,
    lostAffected: m.lostAffected,
    lostUnaffected: m.lostUnaffected,
    duplicates: m.dups,
    silentLossClients: m.silentLoss,
    rejoinErrors: m.rejoinErrors,
    errors: m.errors.slice(0, 3),
  };
}

/** Polls until every affected client is back (and complete, or `graceMs` after all are back). */
async function waitRecovery(ctx, expectedAffected, timeoutMs, graceMs) {
  const deadline = Date.now() + timeoutMs;
  let allBackAt = 0;
  let p = null;
  while (Date.now() < deadline) {
    await sleep(200);
    const ps = await Promise.all(ctx.gens.map((g) => g.call('stormProgress')));
    p = ps.reduce((a, b) => ({ affected: a.affected + b.affected, rejoined: a.rejoined + b.rejoined, complete: a.complete + b.complete }), { affected: 0, rejoined: 0, complete: 0 });
    if (p.affected >= expectedAffected && p.rejoined >= p.affected) {
      allBackAt ||= Date.now();
      if (p.complete >= p.affected && Date.now() - allBackAt >= graceMs) return { timedOut: false, ...p };
      if (Date.now() - allBackAt >= Math.max(graceMs, ctx.sizes.settleMs * 3)) return { timedOut: false, ...p };
    }
  }
  return { timedOut: true, ...(p ?? {}) };
}

async function finalRound(ctx, rooms) {
  await ctx.pubGen.call('pubStop');
  const drained = await ctx.pubGen.call('pubDrain', { timeoutMs: 10_000 });
  await sleep(ctx.sizes.settleMs * 1.5);
  const parts = await Promise.all(ctx.gens.map((g) => g.call('stormFinal', { published: drained.published })));
  const published = rooms.reduce((s, r) => s + (drained.published[r] ?? 0), 0);
  return { merged: mergeFinal(parts), published, publishErrors: drained.errors };
}

// ------------------------------------------------------------------ scenario: storm
async function stormVariant(ctx, target, variant) {
  const S = ctx.sizes;
  const workers = await startPair(ctx, target, { flushMs: S.flushMs });
  let done;
  try {
    await initGens(ctx, target, S.jitterMs);
    const rooms = await createRooms(workers[0].url, S.stormRooms);
    const c = await connectClients(ctx, target, workers, rooms, 0, S.stormClients, S.connectConcurrency);
    await ctx.pubGen.call('pubReset');
    await ctx.pubGen.call('pubStart', { mode: 'http', rooms, ratePerSec: S.stormRatePerRoom * rooms.length, url: workers[1].url, token: SERVICE_TOKEN });
    await sleep(S.settleMs * 1.5);
    done = cpuPhase(ctx, `storm-${variant}:${target}`);
    const st = await Promise.all(ctx.gens.map((g) => g.call('stormStart', { jitterMs: S.jitterMs })));
    const seqLagBefore = st.reduce((a, b) => a + (b.seqLag ?? 0), 0);
    const expectedAffected = Math.ceil(c.ok / 2);
    const t0 = Date.now();
    // The worker goes down and is restarted in the background while the clients come back.
    const restart = (async () => {
      await workers[0].stop(variant === 'kill' ? 'SIGKILL' : 'SIGTERM', 30_000);
      const downMs = Date.now() - t0;
      const startMs = await workers[0].start();
      return { downMs, startMs };
    })();
    // Tether announces returns in one batch per room and RECONNECT_FLUSH_MS window: wait it out.
    const wait = await waitRecovery(ctx, expectedAffected, S.stormTimeoutMs, target === 'tether' ? S.flushMs + S.settleMs * 2 : S.settleMs * 2);
    if (wait.timedOut) warn(`${target} storm-${variant}: timed out after ${S.stormTimeoutMs} ms (${wait.rejoined ?? 0}/${wait.affected ?? 0} back)`);
    const elapsedMs = Date.now() - t0;
    const { downMs, startMs } = await restart;
    const fin = await finalRound(ctx, rooms);
    const cpu = done();
    const redisPeak = cpu.redis?.maxPct ?? null;
    const out = {
      clients: c.ok,
      rooms: rooms.length,
      publishPerSec: S.stormRatePerRoom * rooms.length,
      workerDownMs: downMs,
      workerRestartMs: round(startMs),
      seqLagBeforeStorm: seqLagBefore,
      elapsedMs,
      timedOut: wait.timedOut,
      ...summarize(fin.merged, expectedAffected),
      published: fin.published,
      publishErrors: fin.publishErrors,
      redisCpuPeakPct: redisPeak,
      redisCpuAvgPct: cpu.redis?.avgPct ?? null,
      cpu,
    };
    log(
      `  storm-${variant} ${target}: ${out.affected} affected, 100% back in ${fmt(out.timeTo100RejoinedMs)} ms, complete ${out.completePct}% (100% at ${fmt(out.timeTo100CompleteMs)} ms), missed delivered ${out.missedDelivered}/${out.missedPublished}, presence msgs ${out.presenceMessages}, redis peak ${redisPeak}%`,
    );
    return out;
  } finally {
    await Promise.all(ctx.gens.map((g) => g.call('stormStop').catch(() => undefined)));
    await closeGens(ctx);
    await stopPair(ctx, workers);
  }
}

async function scenarioStorm(ctx, target) {
  const kill = await stormVariant(ctx, target, 'kill');
  const drain = await stormVariant(ctx, target, 'drain');
  return { kill, drain };
}

// ------------------------------------------------------------------ scenario: catchup
async function catchupCases(ctx, target, cases, extra) {
  const S = ctx.sizes;
  const workers = await startPair(ctx, target, extra);
  const results = {};
  try {
    await initGens(ctx, target, S.jitterMs);
    const rooms = await createRooms(workers[0].url, S.catchupRooms);
    const c = await connectClients(ctx, target, workers, rooms, 0, S.catchupClients, S.connectConcurrency);
    await ctx.pubGen.call('pubReset');
    for (let i = 0; i < cases.length; i++) {
      const { name, awayMs } = cases[i];
      await ctx.pubGen.call('pubStart', { mode: 'http', rooms, ratePerSec: S.catchupRatePerRoom * rooms.length, url: workers[1].url, token: SERVICE_TOKEN });
      await sleep(S.settleMs);
      const done = cpuPhase(ctx, `catchup-${name}:${target}`);
      await Promise.all(ctx.gens.map((g) => g.call('stormStart', {})));
      const drops = await Promise.all(ctx.gens.map((g) => g.call('drop', { mod: 2, rem: i % 2, awayMs })));
      const dropped = drops.reduce((s, d) => s + d.dropped, 0);
      const wait = await waitRecovery(ctx, dropped, awayMs + 20_000, 500);
      if (wait.timedOut) warn(`${target} catchup-${name}: timed out (${wait.rejoined ?? 0}/${wait.affected ?? 0} back)`);
      const fin = await finalRound(ctx, rooms);
      await Promise.all(ctx.gens.map((g) => g.call('stormStop')));
      const s = summarize(fin.merged, dropped);
      results[name] = {
        awayMs,
        clients: c.ok,
        dropped,
        eventsMissed: s.missedPublished,
        eventsRecovered: s.missedDelivered,
        eventsRecoveredPct: s.missedDeliveredPct,
        completePct: s.completePct,
        recoveredWithoutSnapshotPct: s.recoveredWithoutSnapshotPct,
        snapshots: s.snapshots,
        duplicates: s.duplicates,
        silentLossClients: s.silentLossClients,
        lostUnaffected: s.lostUnaffected,
        // Correct: every client ends with every event (duplicates are dropped by the client's
        // seq/n check and reported), or was told it must resync (snapshot / recovered=false).
        correct: s.silentLossClients === 0 && s.lostUnaffected === 0,
        timeTo100CompleteMs: s.timeTo100CompleteMs,
        cpu: done(),
      };
      log(`  catchup-${name} ${target}: ${dropped} away ${awayMs} ms, missed ${s.missedPublished}, recovered ${s.missedDelivered} (${s.missedDeliveredPct}%), snapshots ${s.snapshots}, silent loss ${s.silentLossClients}, dups ${s.duplicates}`);
    }
    return results;
  } finally {
    await ctx.pubGen.call('pubStop').catch(() => undefined);
    await Promise.all(ctx.gens.map((g) => g.call('stormStop').catch(() => undefined)));
    await closeGens(ctx);
    await stopPair(ctx, workers);
  }
}

async function scenarioCatchup(ctx, target) {
  const S = ctx.sizes;
  const cases = S.catchupAway.map((ms) => ({ name: `${ms / 1000}s`, awayMs: ms }));
  const normal = await catchupCases(ctx, target, cases, {});
  // Past retention: the log (Tether) / the session window (CSR) is 1 s, the client is away longer.
  const past = await catchupCases(ctx, target, [{ name: 'past-retention', awayMs: S.retentionAwayMs }], { catchupTtlMs: 1000, csrMaxMs: 1000 });
  return { ...normal, ...past };
}

// ------------------------------------------------------------------ report
function report(results, ctx) {
  const T = ctx.opts.targets;
  const hdr = (title) => [title, ...T, ...T.filter((t) => t !== 'tether').map((t) => `tether/${t}`)];
  const row = (label, get) => {
    const vals = T.map((t) => {
      try {
        return get(t);
      } catch {
        return null;
      }
    });
    const tv = vals[T.indexOf('tether')];
    return [label, ...vals, ...T.filter((t) => t !== 'tether').map((t) => ratio(tv, vals[T.indexOf(t)]))];
  };
  const r = results.scenarios;
  if (r.idle) {
    const levels = Math.max(...T.map((t) => r.idle[t]?.levels?.length ?? 0));
    const rows = [];
    for (let i = 0; i < levels; i++) {
      const n = r.idle[T[0]]?.levels?.[i]?.connections;
      rows.push(row(`RSS KB/conn @${n}`, (t) => r.idle[t].levels[i].rssPerConnKB));
      rows.push(row(`heap KB/conn @${n}`, (t) => r.idle[t].levels[i].heapPerConnKB));
      rows.push(row(`redis KB/conn @${n}`, (t) => r.idle[t].levels[i].redisPerConnKB));
      rows.push(row(`connect+join /s @${n}`, (t) => r.idle[t].levels[i].connectPerSec));
    }
    table('idle: memory per connection (2 workers, after full GC) and connect rate', hdr('metric'), rows);
  }
  if (r.fanout) {
    const rows = [
      row('capacity publishes/s (p99<250ms, 0 lost)', (t) => r.fanout[t].capacityPublishPerSec),
      row('capacity delivered/s', (t) => r.fanout[t].capacityDeliveredPerSec),
      row('p50 ms at capacity', (t) => r.fanout[t].p50AtCapacityMs),
      row('p99 ms at capacity', (t) => r.fanout[t].p99AtCapacityMs),
    ];
    const rates = ctx.sizes.fanoutRates;
    for (const rate of rates) {
      rows.push(row(`@${rate}/s delivered/s`, (t) => r.fanout[t].steps.find((s) => s.ratePerSec === rate)?.deliveredPerSec ?? null));
      rows.push(row(`@${rate}/s p99 ms`, (t) => r.fanout[t].steps.find((s) => s.ratePerSec === rate)?.p99Ms ?? null));
      rows.push(row(`@${rate}/s lost`, (t) => r.fanout[t].steps.find((s) => s.ratePerSec === rate)?.lost ?? null));
    }
    table(`fanout: ${ctx.sizes.fanoutRooms} rooms × ${ctx.sizes.fanoutMembers} members over 2 workers`, hdr('metric'), rows);
  }
  if (r.storm) {
    for (const v of ['kill', 'drain']) {
      const g = (t) => r.storm[t][v];
      table(`storm (${v === 'kill' ? 'SIGKILL + restart' : 'SIGTERM drain + restart'}): ${ctx.sizes.stormClients} clients in ${ctx.sizes.stormRooms} rooms, publishing meanwhile`, hdr('metric'), [
        row('affected clients', (t) => g(t).affected),
        row('back in room %', (t) => g(t).rejoinedPct),
        row('time to 99% back (ms)', (t) => g(t).timeTo99RejoinedMs),
        row('time to 100% back (ms)', (t) => g(t).timeTo100RejoinedMs),
        row('back with all missed events %', (t) => g(t).completePct),
        row('time to 99% complete (ms)', (t) => g(t).timeTo99CompleteMs),
        row('time to 100% complete (ms)', (t) => g(t).timeTo100CompleteMs),
        row('recovered w/o snapshot %', (t) => g(t).recoveredWithoutSnapshotPct),
        row('missed events published', (t) => g(t).missedPublished),
        row('missed events delivered', (t) => g(t).missedDelivered),
        row('presence/join broadcasts received', (t) => g(t).presenceMessages),
        row('  + replayed in catch-up', (t) => g(t).presenceReplayed),
        row('reconnect p50 ms (drop→session)', (t) => g(t).reconnectMsP50),
        row('rejoin ack p50 ms', (t) => g(t).rejoinAckMsP50),
        row('duplicates (dropped by seq)', (t) => g(t).duplicates),
        row('redis CPU peak %', (t) => g(t).redisCpuPeakPct),
        row('worker kill/drain ms', (t) => g(t).workerDownMs),
        row('worker restart-to-ready ms', (t) => g(t).workerRestartMs),
      ]);
    }
  }
  if (r.catchup) {
    const names = Object.keys(r.catchup[T[0]] ?? {});
    const rows = [];
    for (const n of names) {
      rows.push(row(`${n}: events missed`, (t) => r.catchup[t][n].eventsMissed));
      rows.push(row(`${n}: events recovered %`, (t) => r.catchup[t][n].eventsRecoveredPct));
      rows.push(row(`${n}: snapshots`, (t) => r.catchup[t][n].snapshots));
      rows.push(row(`${n}: duplicates (dropped)`, (t) => r.catchup[t][n].duplicates));
      rows.push(row(`${n}: silent-loss clients`, (t) => r.catchup[t][n].silentLossClients));
      rows.push(row(`${n}: correct`, (t) => (r.catchup[t][n].correct ? 'yes' : 'NO')));
    }
    table('catchup: clients away, then reconnect + rejoin (correct = all events exactly once, or told to resync)', hdr('metric'), rows);
  }
}

function evaluateTargets(results) {
  const r = results.scenarios;
  const out = [];
  const add = (name, value, pass, why) => out.push({ name, value, pass, ...(why ? { note: why } : {}) });
  if (r.idle?.tether && r.idle?.plain) {
    // Heap after a full GC is the stable figure; RSS deltas are shown too but at small counts
    // they are dominated by allocator retention (pages freed after start-up are reused first).
    const t = r.idle.tether.last.heapPerConnKB;
    const p = r.idle.plain.last.heapPerConnKB;
    const tr = r.idle.tether.last.rssPerConnKB;
    const pr = r.idle.plain.last.rssPerConnKB;
    add('idle: Tether memory/conn ≤ plain (heap after GC)', `${t} vs ${p} KB heap (ratio ${ratio(t, p)}); RSS ${tr} vs ${pr} KB`, t <= p);
  }
  if (r.fanout?.tether && r.fanout?.plain) {
    const t = r.fanout.tether.capacityPublishPerSec;
    const p = r.fanout.plain.capacityPublishPerSec;
    add('fanout: capacity at p99<250ms ≥ 0.9× plain', `${t} vs ${p} publishes/s (ratio ${ratio(t, p)})`, p === 0 ? t >= 0 : t >= 0.9 * p);
  }
  if (r.storm?.tether) {
    for (const v of ['kill', 'drain']) {
      const t = r.storm.tether[v];
      add(`storm-${v}: Tether 100% back with 100% of missed events`, `${t.completePct}% complete, ${t.missedDelivered}/${t.missedPublished} missed events`, t.completePct === 100 && t.missedDelivered === t.missedPublished && t.affected > 0);
      const p = r.storm.plain?.[v];
      if (p) {
        const tt = t.timeTo100CompleteMs;
        const pt = p.timeTo100RejoinedMs;
        add(`storm-${v}: time-to-100% ≤ 1.5× plain rejoin`, `${fmt(tt)} vs ${fmt(pt)} ms (ratio ${ratio(tt, pt)})`, tt !== null && pt !== null && tt <= 1.5 * pt);
        const tp = t.presenceMessages;
        const pp = p.presenceMessages;
        add(`storm-${v}: presence messages ≥ 20× fewer than plain`, `${tp} vs ${pp} (${tp ? round(pp / tp) : '∞'}× fewer)`, pp >= 20 * tp);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ main
export async function main(argv) {
  installExitHooks();
  const opts = parseArgs(argv);
  const S = sizes(opts.quick, opts.overrides);
  if (opts.targets.includes('tether') && !existsSync(ENTRY.tether)) throw new Error('dist/main.js is missing: run `npm run build` first');
  const lim = spawnSync('sh', ['-c', 'ulimit -n; ulimit -Hn'], { encoding: 'utf8' }).stdout.trim().split('\n');
  fdLimit = { soft: Number(lim[0]) || null, hard: lim[1] === 'unlimited' ? 1_048_576 : Number(lim[1]) || null };
  const startedAt = new Date();
  const probeDir = mkdtempSync(join(tmpdir(), 'tether-bench-'));
  const cpu = new CpuSampler(250);
  const ctx = { opts, sizes: S, probeDir, cpu, gens: [], pubGen: null, redis: null, freePort: null };
  const { freePort } = await import(pathToFileURL(join(ROOT, 'dist/cluster/local-redis.js')).href).catch(() => ({ freePort: null }));
  ctx.freePort = freePort ?? (async () => 20000 + Math.floor(Math.random() * 20000));
  const results = {
    meta: {
      tool: 'tether bench',
      quick: opts.quick,
      startedAt: startedAt.toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? null,
      memGB: round(totalmem() / 2 ** 30),
      openFilesLimit: fdLimit,
      sizes: S,
      note: `${cpus().length} cores shared by redis, 2 workers, generators (and possibly other users): absolute numbers are noisy, the Tether/baseline ratios carry.`,
    },
    scenarios: {},
    cpu: {},
    targets: [],
    warnings,
  };
  log(`tether bench${opts.quick ? ' (--quick)' : ''}: scenarios ${opts.scenarios.join(',')} × targets ${opts.targets.join(',')}`);
  log(`NOTE: ${results.meta.note}`);
  if (fdLimit.hard && fdLimit.hard < 65_535) log(`open-files limit is ${fdLimit.soft}/${fdLimit.hard} (soft/hard): each process holds at most ~${fdLimit.hard - 100} sockets; sizes are capped at 20k total.`);
  let exitCode = 0;
  try {
    ctx.redis = await startRedis(probeDir, cpu);
    for (let i = 0; i < S.generators; i++) ctx.gens.push(new Gen(`gen${i}`, ctx));
    ctx.pubGen = new Gen('publisher', ctx);
    await Promise.all([...ctx.gens, ctx.pubGen].map((g) => g.start()));
    const runners = { idle: scenarioIdle, fanout: scenarioFanout, storm: scenarioStorm, catchup: scenarioCatchup };
    for (const scenario of opts.scenarios) {
      results.scenarios[scenario] = {};
      for (const target of opts.targets) {
        log(`${scenario} × ${target}`);
        const t0 = Date.now();
        try {
          results.scenarios[scenario][target] = await runners[scenario](ctx, target);
        } catch (e) {
          exitCode = 1;
          warn(`${scenario} × ${target} failed: ${e?.stack ?? e}`);
          results.scenarios[scenario][target] = { error: String(e?.message ?? e) };
        }
        log(`${scenario} × ${target} done in ${round((Date.now() - t0) / 1000)} s`);
      }
    }
    results.cpu = cpu.report();
    try {
      report(results, ctx);
    } catch (e) {
      warn(`report failed: ${e?.message}`);
    }
    results.targets = evaluateTargets(results);
    if (results.targets.length) {
      process.stdout.write('\n== targets (reported, not asserted)\n');
      for (const t of results.targets) process.stdout.write(`${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.value}\n`);
    }
    process.stdout.write(`\n${results.meta.note}\n`);
    if (warnings.length) process.stdout.write(`${warnings.length} warning(s) above.\n`);
  } finally {
    results.finishedAt = new Date().toISOString();
    results.durationSec = round((Date.now() - startedAt.getTime()) / 1000);
    if (opts.json) {
      writeFileSync(opts.json, `${JSON.stringify(results, null, 2)}\n`);
      log(`wrote ${opts.json}`);
    }
    cpu.stop();
    await Promise.all([...ctx.gens, ctx.pubGen].filter(Boolean).map((g) => g.call('exit', {}, 2000).catch(() => undefined)));
    await ctx.redis?.stop();
    for (const c of liveChildren()) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(probeDir, { recursive: true, force: true });
  }
  return exitCode;
}

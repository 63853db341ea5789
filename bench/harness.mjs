// Tether benchmark harness (`npm run bench`). Starts a private redis-server, then for every
// (scenario, target, repeat) two app workers and fresh load-generator processes, and runs the same
// scenario against Tether and three baselines built from public packages only: plain (the naive
// Socket.IO + redis-adapter app), careful (the same with a Redis member list and batched presence)
// and csr (Socket.IO connection state recovery + redis-streams-adapter). Targets run interleaved in
// a rotating order, repeats are aggregated (median, min–max), the issue's targets are printed with
// their ratios as PASS/MISS, and --json writes everything bench/render.mjs needs for BENCHMARKS.md.
// Loopback only; every wait is bounded; every child is killed by PID on exit, error or signal.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { ENTRY, ONE_ADDRESS_ENV, ROOT, Redis, RedisCluster, freePortFn } from './lib/infra.mjs';
import { installExitHooks, liveChildren, round } from './lib/procs.mjs';
import { meterWindows } from './lib/util.mjs';
import { Session } from './lib/session.mjs';
import { catchup, fanout, smallRooms, storm } from './scenarios.mjs';
import { evaluateTargets } from './targets.mjs';
import { buildReport, toText } from './report.mjs';

export const TARGETS = ['plain', 'careful', 'csr', 'tether'];
const OUTSIDE_LOAD_WARN_PCT = 20;


// Tether's production defaults the harness needs to know (src/config/index.ts).
const TETHER_DEFAULTS = { PUBLISH_RATE_PER_SEC: '20', RECONNECT_FLUSH_MS: '3000', CATCHUP_TTL_MS: '600000' };
const CAREFUL_DEFAULTS = { PRESENCE_BATCH_MS: '1000' };

/**
 * The scenarios, in the order they run within a repeat. `repeats`: 'main' scenarios carry the
 * issue's targets and run `repeats` times; 'extra' ones run `extraRepeats` times.
 */
const SCENARIOS = {
  'small-rooms': { repeats: 'main', what: 'connect+join, idle memory, rejoin cost, publishing into small rooms', run: (ctx, s) => smallRooms(ctx, s) },
  fanout: { repeats: 'main', what: 'mass join, fan-out at equal rates, capacity', run: (ctx, s, prior) => fanout(ctx, s, prior) },
  'storm-kill': { repeats: 'main', what: 'SIGKILL of one worker, restarted with a fresh NODE_ID (the production default)', run: (ctx, s) => storm(ctx, s, { signal: 'SIGKILL' }) },
  'storm-kill-same-id': {
    repeats: 'extra',
    targets: ['tether'], // the baselines keep no per-node state: for them this is storm-kill
    fixedNodeIds: true,
    what: 'SIGKILL of one worker, respawned under the same NODE_ID (as `npm start` respawns)',
    run: (ctx, s) => storm(ctx, s, { signal: 'SIGKILL' }),
  },
  'storm-drain': { repeats: 'extra', what: 'SIGTERM (drain) of one worker, restarted', run: (ctx, s) => storm(ctx, s, { signal: 'SIGTERM' }) },
  catchup: { repeats: 'extra', what: 'transports dropped, back to the same worker after a while', run: (ctx, s) => catchup(ctx, s, ctx.sizes.catchupAway.map((ms) => ({ name: `away ${ms / 1000} s`, awayMs: ms }))) },
  'catchup-past-retention': {
    repeats: 'extra',
    env: (S) => ({ tether: { CATCHUP_TTL_MS: String(S.retentionMs) }, csr: { CSR_MAX_DISCONNECTION_MS: String(S.retentionMs) } }),
    what: 'away longer than the retention (shortened for this scenario only)',
    run: (ctx, s) => catchup(ctx, s, [{ name: `away ${ctx.sizes.retentionAwayMs / 1000} s, retention ${ctx.sizes.retentionMs / 1000} s`, awayMs: ctx.sizes.retentionAwayMs }]),
  },
};

const FULL = {
  repeats: 3,
  extraRepeats: 1,
  generators: 4,
  concurrency: 100,
  jitterMs: 1000,
  settleMs: 1000,
  backgroundMs: 1000,
  stepGapMs: 300,
  warmup: 1,
  smallRooms: 1000,
  smallMembers: 5,
  smallRates: [1, 2],
  smallStepMs: 3000,
  rejoinFraction: 0.2,
  fanoutRooms: 10,
  fanoutMembers: 500,
  fanoutPublishers: 2,
  fanoutRates: [2, 4, 6],
  fanoutStepMs: 3000,
  capacityStart: 4,
  capacityProbes: 7,
  capacityMax: 2000,
  stormClients: 5000,
  stormRooms: 100,
  stormRatePerRoom: 2,
  stormObserveMs: 12_000,
  stormTimeoutMs: 60_000,
  catchupClients: 1000,
  catchupRooms: 10,
  catchupRatePerRoom: 5,
  catchupAway: [1000, 5000],
  retentionMs: 1000,
  retentionAwayMs: 3000,
};

// Structure-only smoke (the test suite runs it): tiny sizes, one repeat, one session per target.
const QUICK = {
  ...FULL,
  repeats: 1,
  extraRepeats: 1,
  generators: 2,
  concurrency: 40,
  jitterMs: 300,
  settleMs: 200,
  backgroundMs: 200,
  stepGapMs: 50,
  warmup: 0,
  smallRooms: 12,
  smallMembers: 5,
  smallRates: [2],
  smallStepMs: 600,
  fanoutRooms: 2,
  fanoutMembers: 16,
  fanoutRates: [4],
  fanoutStepMs: 600,
  capacityStart: 8,
  capacityProbes: 2,
  stormClients: 40,
  stormRooms: 4,
  stormRatePerRoom: 4,
  stormObserveMs: 1500,
  stormTimeoutMs: 15_000,
  catchupClients: 20,
  catchupRooms: 2,
  catchupAway: [500],
};
// The storm last: it restarts a worker, the one thing the next scenario would have to wait for.
const QUICK_SCENARIOS = ['small-rooms', 'fanout', 'catchup', 'storm-kill'];
// Windows shortened so the smoke takes seconds; printed like every other override.
const QUICK_OVERRIDES = { tether: { RECONNECT_FLUSH_MS: '200' }, careful: { PRESENCE_BATCH_MS: '200' } };

// What cannot run on a Redis Cluster, said in the output when --redis cluster leaves it out.
const CLUSTER_SKIPS = {
  plain: "@socket.io/redis-adapter's classic createAdapter on node-redis createClient: no MOVED/ASK handling, and its PUBLISH is copied to every cluster node",
  careful: 'the plain baseline plus a member list, on the same non-cluster clients and classic adapter',
  csr: '@socket.io/redis-streams-adapter reads one stream key with a standalone client (no cluster support)',
};

const USAGE = `usage: npm run bench -- [options]
  --quick                 structure-only smoke (tiny sizes, ~1 min)
  --redis MODE            standalone (one redis-server, default) or cluster (a local 3-master
                          Redis Cluster; Tether with REDIS_MODE=cluster, baselines skipped)
  --json FILE             write the run's results (render with: node bench/render.mjs FILE > BENCHMARKS.md)
  --scenario a,b          ${Object.keys(SCENARIOS).join(', ')}
  --targets a,b           ${TARGETS.join(', ')}
  --set TARGET:VAR=VALUE  override a target's environment (repeatable; printed in the output)
  --<size>=VALUE          ${Object.keys(FULL)
    .map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=${FULL[k]}`)
    .join(' ')}
                          (lists comma-separated, e.g. --fanout-rates=2,4,6)
`;

/** A mistake on the command line: reported as one line, without a stack. */
function usageError(msg) {
  return Object.assign(new Error(msg), { usage: true });
}

/**
 * The machine as a run finds it, recorded with every run: the time of a fixed CPU loop in this
 * process (a VM cannot see its host's load, and the same scenario drifts by tens of percent over a
 * long run; this shows whether the machine slowed down) and the kernel's TCP sockets in TIME_WAIT
 * (tens of thousands build up over a run of 5,000-connection sessions).
 */
function machineNow() {
  const t0 = performance.now();
  let h = Buffer.alloc(32);
  for (let i = 0; i < 20_000; i++) h = createHash('sha256').update(h).digest();
  const calibrationMs = round(performance.now() - t0, 1);
  let tcpTimeWait = null;
  try {
    const tw = /^TCP:.*\btw (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    if (tw) tcpTimeWait = Number(tw[1]);
  } catch {
    // not Linux
  }
  return { calibrationMs, tcpTimeWait };
}

function parseArgs(argv) {
  const o = { quick: false, json: null, redis: 'standalone', scenarios: null, targets: TARGETS, skipped: {}, sizes: {}, overrides: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw usageError(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--json') o.json = val();
    else if (a === '--redis') {
      o.redis = val();
      if (o.redis !== 'standalone' && o.redis !== 'cluster') throw usageError('--redis wants standalone or cluster');
    }
    else if (a === '--scenario' || a === '--scenarios') o.scenarios = val().split(',');
    else if (a === '--targets') o.targets = val().split(',');
    else if (a === '--set') {
      const m = /^(\w+):([A-Z0-9_]+)=(.*)$/.exec(val());
      if (!m || !TARGETS.includes(m[1])) throw usageError(`--set wants TARGET:VAR=VALUE with TARGET one of ${TARGETS.join(', ')}`);
      (o.overrides[m[1]] ??= {})[m[2]] = m[3];
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a.startsWith('--') && a.includes('=')) {
      const [k, v] = a.slice(2).split('=');
      o.sizes[k.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v;
    } else throw usageError(`unknown argument ${a}\n${USAGE}`);
  }
  o.scenarios ??= o.quick ? QUICK_SCENARIOS : Object.keys(SCENARIOS);
  for (const s of o.scenarios) if (!SCENARIOS[s]) throw usageError(`unknown scenario ${s} (have ${Object.keys(SCENARIOS).join(', ')})`);
  for (const t of o.targets) if (!TARGETS.includes(t)) throw usageError(`unknown target ${t}`);
  if (o.redis === 'cluster') {
    o.skipped = Object.fromEntries(o.targets.filter((t) => CLUSTER_SKIPS[t]).map((t) => [t, CLUSTER_SKIPS[t]]));
    o.targets = o.targets.filter((t) => !CLUSTER_SKIPS[t]);
    if (!o.targets.length) throw usageError('--redis cluster runs Tether only; --targets left none');
  }
  return o;
}

const kebab = (k) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function sizes(quick, given) {
  const S = { ...(quick ? QUICK : FULL) };
  for (const [k, v] of Object.entries(given)) {
    if (!(k in FULL)) throw usageError(`unknown size --${kebab(k)}`);
    S[k] = Array.isArray(FULL[k]) ? v.split(',').map(Number) : Number(v);
    if ([S[k]].flat().some((x) => !Number.isFinite(x) || x < 0)) throw usageError(`--${kebab(k)}: not a non-negative number: ${v}`);
  }
  return S;
}

/** One process holds at most ~the open-files limit of sockets; warn before a run would hit it. */
function checkLimits(S, fd, warn) {
  const perGen = Math.ceil(Math.max(S.smallRooms * S.smallMembers, S.fanoutRooms * S.fanoutMembers, S.stormClients, S.catchupClients) / S.generators);
  const perWorker = Math.max(S.smallRooms * S.smallMembers, S.fanoutRooms * S.fanoutMembers, S.stormClients);
  const limit = fd.hard ?? fd.soft;
  if (limit && (perGen > limit - 200 || perWorker > limit - 200)) warn(`sizes need up to ${Math.max(perGen, perWorker)} sockets in one process; the open-files limit is ${limit}: raise --generators or lower the sizes`);
}

function gitInfo() {
  const git = (args) => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const status = git(['status', '--porcelain']);
  return { commit: git(['rev-parse', 'HEAD']), branch: git(['rev-parse', '--abbrev-ref', 'HEAD']), dirty: status === null ? null : status.length > 0 };
}

function plan(opts, S) {
  const runs = [];
  if (opts.quick) {
    // One session per target, scenarios in order: structure only, so no rotation or repeats.
    for (const t of opts.targets) for (const sc of opts.scenarios) if (!SCENARIOS[sc].targets || SCENARIOS[sc].targets.includes(t)) runs.push({ scenario: sc, target: t, repeat: 0 });
    return runs;
  }
  const reps = (sc) => (SCENARIOS[sc].repeats === 'main' ? S.repeats : S.extraRepeats);
  const max = Math.max(...opts.scenarios.map(reps));
  // Repeats outermost, so a burst of outside load hits one repeat of everything rather than every
  // repeat of one scenario; within a scenario the targets' order rotates from repeat to repeat.
  for (let r = 0; r < max; r++) {
    for (const sc of opts.scenarios) {
      if (r >= reps(sc)) continue;
      const ts = opts.targets.filter((t) => !SCENARIOS[sc].targets || SCENARIOS[sc].targets.includes(t));
      const k = r % ts.length;
      for (const t of [...ts.slice(k), ...ts.slice(0, k)]) runs.push({ scenario: sc, target: t, repeat: r });
    }
  }
  return runs;
}

function envFor(opts, S, scenario, target) {
  return { ...(opts.quick ? QUICK_OVERRIDES[target] : {}), ...opts.overrides[target], ...SCENARIOS[scenario].env?.(S)[target] };
}

export async function main(argv) {
  installExitHooks();
  const opts = parseArgs(argv);
  const S = sizes(opts.quick, opts.sizes);
  if (opts.targets.includes('tether') && !existsSync(ENTRY.tether)) throw new Error('dist/main.js is missing: run `npm run build` first');
  const lim = spawnSync('sh', ['-c', 'ulimit -n; ulimit -Hn'], { encoding: 'utf8' }).stdout.trim().split('\n');
  const fdLimit = { soft: Number(lim[0]) || null, hard: lim[1] === 'unlimited' ? 1_048_576 : Number(lim[1]) || null };
  const startedAt = new Date();
  const probeDir = mkdtempSync(join(tmpdir(), 'tether-bench-'));
  const warnings = [];
  const log = (msg) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  const warn = (msg) => {
    warnings.push(msg);
    process.stdout.write(`WARNING: ${msg}\n`);
  };
  const all = { ...opts.overrides };
  const ctx = {
    opts,
    sizes: S,
    probeDir,
    fdLimit,
    cores: cpus().length,
    log,
    warn,
    tetherDefaults: TETHER_DEFAULTS,
    freePort: await freePortFn(),
    redis: null,
  };
  // Every wait for batched presence uses the longest window of any target, for all targets alike.
  const windowOf = (t) => {
    const env = { ...(opts.quick ? QUICK_OVERRIDES[t] : {}), ...all[t] };
    if (t === 'tether') return Number(env.RECONNECT_FLUSH_MS ?? TETHER_DEFAULTS.RECONNECT_FLUSH_MS);
    if (t === 'careful') return Number(env.PRESENCE_BATCH_MS ?? CAREFUL_DEFAULTS.PRESENCE_BATCH_MS);
    return 0;
  };
  ctx.batchWindowMs = Math.max(...opts.targets.map(windowOf));
  checkLimits(S, fdLimit, warn);
  const runs = plan(opts, S);
  const results = {
    meta: {
      tool: 'tether bench',
      command: `npm run bench -- ${argv.join(' ')}`.trim(),
      quick: opts.quick,
      startedAt: startedAt.toISOString(),
      git: gitInfo(),
      machine: {
        cores: cpus().length,
        cpuModel: cpus()[0]?.model ?? null,
        memGB: round(totalmem() / 2 ** 30),
        kernel: release(),
        node: process.version,
        redis: null,
        openFiles: fdLimit,
        loadAvgAtStart: (await import('node:os')).loadavg().map((x) => round(x, 2)),
      },
      redis: { mode: opts.redis, masters: opts.redis === 'cluster' ? 3 : 1, skipped: opts.skipped },
      sizes: S,
      scenarios: Object.fromEntries(opts.scenarios.map((sc) => [sc, { what: SCENARIOS[sc].what, targets: SCENARIOS[sc].targets ?? opts.targets, repeats: SCENARIOS[sc].repeats === 'main' ? S.repeats : S.extraRepeats }])),
      targets: opts.targets,
      generatorEnv: { tether: ONE_ADDRESS_ENV },
      order: runs.map((r) => `${r.scenario}:${r.target}#${r.repeat + 1}`),
      overrides: Object.fromEntries(
        opts.targets.map((t) => [
          t,
          Object.fromEntries(
            opts.scenarios
              .filter((sc) => !SCENARIOS[sc].targets || SCENARIOS[sc].targets.includes(t))
              .map((sc) => [sc, { ...envFor(opts, S, sc, t), ...(SCENARIOS[sc].fixedNodeIds ? { NODE_ID: `${t}-w0 / ${t}-w1, kept across restarts` } : {}) }])
              .filter(([, e]) => Object.keys(e).length),
          ),
        ]),
      ),
      defaultsUsed: { tether: TETHER_DEFAULTS, careful: CAREFUL_DEFAULTS, csr: { CSR_MAX_DISCONNECTION_MS: '120000 (Socket.IO default)', streamMaxLen: '10000 (adapter default)' } },
      batchWindowMs: ctx.batchWindowMs,
      placement:
        'member k of room r is on worker (k + r) mod 2, so every room has members on both workers; the publishing members of a room are its members 0 and 1 (one on each worker); ' +
        'the HTTP publisher of the outage scenarios alternates workers per event and retries a refused one on the other; clients of a killed or drained worker reconnect to the other one.',
    },
    runs: {},
    targets: [],
    warnings,
  };
  log(`tether bench${opts.quick ? ' (--quick: structure only)' : ''}: ${runs.length} runs, scenarios ${opts.scenarios.join(', ')} × targets ${opts.targets.join(', ')}`);
  for (const [t, scs] of Object.entries(results.meta.overrides)) for (const [sc, env] of Object.entries(scs)) log(`override ${t} (${sc}): ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  log(`placement: ${results.meta.placement}`);
  if (opts.redis === 'cluster') log('redis: a local 3-master Redis Cluster (REDIS_MODE=cluster); CPU, memory and commandstats summed over the masters');
  for (const [t, why] of Object.entries(opts.skipped)) log(`skipped ${t} on a Redis Cluster: ${why}`);
  let exitCode = 0;
  const quickSessions = new Map();
  try {
    ctx.redis = opts.redis === 'cluster' ? await RedisCluster.start(probeDir, ctx.freePort) : await Redis.start(probeDir, ctx.freePort);
    results.meta.machine.redis = ctx.redis.version;
    results.meta.redis.masters = ctx.redis.masters;
    // --quick shares one session per target and starts the next target's while this one runs:
    // structure only, so the overlap costs nothing that matters and saves most of the start-up.
    const quickSession = (run) => {
      const def = SCENARIOS[run.scenario];
      const env = envFor(opts, S, run.scenario, run.target);
      const skey = `${run.target}|${JSON.stringify(env)}|${Boolean(def.fixedNodeIds)}`;
      if (!quickSessions.has(skey)) {
        const session = new Session(ctx, run.target, env, { fixedNodeIds: def.fixedNodeIds });
        const started = session.start({ flush: false });
        started.catch(() => undefined); // awaited (and reported) when its turn comes
        quickSessions.set(skey, { session, started });
      }
      return quickSessions.get(skey);
    };
    for (const [i, run] of runs.entries()) {
      const def = SCENARIOS[run.scenario];
      const machine = machineNow();
      const env = envFor(opts, S, run.scenario, run.target);
      const list = (results.runs[run.scenario] ??= {})[run.target] ??= [];
      const t0 = Date.now();
      log(`${run.scenario} × ${run.target} (repeat ${run.repeat + 1})`);
      let s;
      try {
        if (opts.quick) {
          const next = runs.slice(i + 1).find((r) => r.target !== run.target);
          if (next) quickSession(next);
          s = await quickSession(run).started;
        } else {
          s = new Session(ctx, run.target, env, { fixedNodeIds: def.fixedNodeIds });
          await s.start();
        }
        const prior = list.filter((x) => !x.error).at(-1)?.capacity?.capacityPerSec || 0;
        const out = await def.run(ctx, s, prior);
        list.push({ repeat: run.repeat, startedAt: new Date(t0).toISOString(), seconds: round((Date.now() - t0) / 1000), env, machine, ...out });
        const outside = Math.max(0, ...meterWindows(out).map((c) => c.otherLoadPct ?? 0));
        if (!opts.quick && outside > OUTSIDE_LOAD_WARN_PCT) warn(`${run.scenario} × ${run.target} #${run.repeat + 1}: processes outside the benchmark kept up to ${outside} % of the machine busy: its figures are not comparable`);
      } catch (e) {
        exitCode = 1;
        warn(`${run.scenario} × ${run.target} failed: ${e?.stack ?? e}`);
        list.push({ repeat: run.repeat, error: String(e?.message ?? e) });
      } finally {
        if (s && !opts.quick) await s.close().catch(() => undefined);
        else if (s) {
          await s.closeClients();
          // Done with this target: stop its processes before the next target's measurements.
          if (runs[i + 1]?.target !== run.target) await s.close();
        }
      }
      log(`${run.scenario} × ${run.target} done in ${round((Date.now() - t0) / 1000)} s`);
    }
    results.targets = evaluateTargets(results);
    process.stdout.write(toText(buildReport(results)));
  } finally {
    for (const { session } of quickSessions.values()) await session.close().catch(() => undefined);
    results.finishedAt = new Date().toISOString();
    results.durationSec = round((Date.now() - startedAt.getTime()) / 1000);
    if (opts.json) {
      writeFileSync(opts.json, `${JSON.stringify(results, null, 1)}\n`);
      log(`wrote ${opts.json} (render: node bench/render.mjs ${opts.json} > BENCHMARKS.md)`);
    }
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
  log(`finished in ${results.durationSec} s${warnings.length ? `, ${warnings.length} warning(s)` : ''}`);
  return exitCode;
}

#!/usr/bin/env node
/**
 * Runs an unmodified k6 script under Node through the k6 shim (one worker thread per VU).
 *
 *   node load-tests/node/run-k6-script.mjs <script.js> [options] [-e NAME=value ...]
 *
 * Options:
 *   -e, --env NAME=value    script environment (__ENV); the process environment is included too
 *   --vus N                 with --duration/--iterations: replace the script's scenarios by a
 *   --duration 30s          constant-vus (duration) or shared-iterations (iterations) run, as k6 does
 *   --iterations N
 *   --max-vus N             refuse plans above N VUs (default 200; each VU is a thread)
 *   --max-duration 10m      hard wall-clock cap for the whole run, setup and teardown included (default 15m)
 *   --summary-export FILE   write the end-of-test metrics and threshold results as JSON
 *   --quiet                 no summary table
 *
 * Exit codes (k6's): 0 ok, 99 thresholds crossed, 107 script error, 105 init/setup error, 108 aborted, 1 usage.
 *
 * Emulated: options.scenarios (the first one) with executors per-vu-iterations, shared-iterations,
 * constant-vus, ramping-vus (VU start/stop times follow the stages; graceful ramp-down/stop),
 * setup()/teardown(), thresholds (avg min max med p(N) count rate value; abortOnFail), checks,
 * custom metrics. NOT emulated: arrival-rate executors (run as constant-vus), several scenarios at
 * once, sub-metric thresholds (`metric{tag:value}`), k6 cloud/outputs, and k6's performance: a Node
 * thread per VU tops out at a few hundred VUs on a laptop.
 */
import { Worker, MessageChannel } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { VuHost } from './io-host.mjs';
import { scriptSyntaxProblem } from './k6-syntax.mjs';

const EXIT = { OK: 0, USAGE: 1, THRESHOLDS: 99, SETUP: 105, SCRIPT: 107, ABORTED: 108 };

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

export function parseDuration(v, def) {
  if (v === undefined || v === null || v === '') return def;
  if (typeof v === 'number') return v; // numbers are milliseconds (k6 options); strings carry units
  const s = String(v).trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let matched = '';
  let m;
  while ((m = re.exec(s)) !== null) {
    const n = parseFloat(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    matched += m[0];
  }
  if (matched === s && s !== '') return total;
  if (/^\d+(\.\d+)?$/.test(s)) return parseFloat(s) * 1000; // CLI: bare numbers are seconds
  throw new Error(`bad duration ${JSON.stringify(v)}`);
}

function parseArgs(argv) {
  const a = { env: {}, script: null, vus: null, duration: null, iterations: null, maxVus: 200, maxDuration: 15 * 60_000, summaryExport: null, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${x} needs a value`);
      return argv[++i];
    };
    if (x === '-e' || x === '--env') {
      const kv = val();
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`-e expects NAME=value, got ${kv}`);
      a.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (x === '--vus' || x === '-u') a.vus = parseInt(val(), 10);
    else if (x === '--duration' || x === '-d') a.duration = parseDuration(val());
    else if (x === '--iterations' || x === '-i') a.iterations = parseInt(val(), 10);
    else if (x === '--max-vus') a.maxVus = parseInt(val(), 10);
    else if (x === '--max-duration') a.maxDuration = parseDuration(val());
    else if (x === '--summary-export') a.summaryExport = val();
    else if (x === '--quiet' || x === '-q') a.quiet = true;
    else if (x === '-h' || x === '--help') a.help = true;
    else if (!a.script && !x.startsWith('-')) a.script = x;
    else throw new Error(`unknown argument ${x}`);
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// metrics and thresholds
// ---------------------------------------------------------------------------------------------

const BUILTIN = {
  checks: 'rate',
  iterations: 'counter',
  iteration_duration: 'trend',
  http_reqs: 'counter',
  http_req_duration: 'trend',
  http_req_failed: 'rate',
  ws_connecting: 'trend',
  ws_sessions: 'counter',
  ws_session_duration: 'trend',
  ws_msgs_sent: 'counter',
  ws_msgs_received: 'counter',
};
const TIME_METRICS = new Set(['iteration_duration', 'http_req_duration', 'ws_connecting', 'ws_session_duration']);
const MAX_TREND_SAMPLES = 200_000;

export class Aggregator {
  constructor() {
    this.metrics = new Map();
    this.checks = new Map(); // check name -> { passes, fails }
  }
  define(name, type, isTime) {
    if (!this.metrics.has(name)) this.metrics.set(name, { type, isTime: !!isTime || TIME_METRICS.has(name), values: [], seen: 0, sum: 0, count: 0, trues: 0, min: Infinity, max: -Infinity, last: 0 });
  }
  add(samples) {
    for (const [name, value, tags] of samples) {
      if (!this.metrics.has(name)) this.define(name, BUILTIN[name] || 'trend', false);
      const m = this.metrics.get(name);
      m.count++;
      m.sum += value;
      if (value < m.min) m.min = value;
      if (value > m.max) m.max = value;
      m.last = value;
      if (m.type === 'rate' && value) m.trues++;
      if (m.type === 'trend') {
        // Reservoir sampling keeps percentiles honest on long runs without unbounded memory.
        m.seen++;
        if (m.values.length < MAX_TREND_SAMPLES) m.values.push(value);
        else {
          const j = Math.floor(Math.random() * m.seen);
          if (j < MAX_TREND_SAMPLES) m.values[j] = value;
        }
      }
      if (name === 'checks' && tags && tags.check) {
        const c = this.checks.get(tags.check) || { passes: 0, fails: 0 };
        if (value) c.passes++;
        else c.fails++;
        this.checks.set(tags.check, c);
      }
    }
  }
  values(name, elapsedSec) {
    const m = this.metrics.get(name);
    if (!m) return null;
    switch (m.type) {
      case 'counter':
        return { count: m.sum, rate: elapsedSec > 0 ? m.sum / elapsedSec : 0 };
      case 'rate':
        return { rate: m.count ? m.trues / m.count : 0, passes: m.trues, fails: m.count - m.trues };
      case 'gauge':
        return { value: m.last, min: m.count ? m.min : 0, max: m.count ? m.max : 0 };
      default: {
        const v = m.values.slice().sort((a, b) => a - b);
        const pct = (p) => {
          if (!v.length) return 0;
          const idx = (p / 100) * (v.length - 1);
          const lo = Math.floor(idx);
          const hi = Math.ceil(idx);
          return v[lo] + (v[hi] - v[lo]) * (idx - lo);
        };
        return { avg: m.count ? m.sum / m.count : 0, min: m.count ? m.min : 0, med: pct(50), max: m.count ? m.max : 0, 'p(90)': pct(90), 'p(95)': pct(95), 'p(99)': pct(99), count: m.count, _pct: pct };
      }
    }
  }
}

const THRESHOLD_RE = /^\s*(avg|min|max|med|count|rate|value|p\(\s*\d+(?:\.\d+)?\s*\))\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$/;

export function evalThreshold(expr, vals) {
  const m = THRESHOLD_RE.exec(expr);
  if (!m) throw new Error(`unsupported threshold expression ${JSON.stringify(expr)}`);
  let stat = m[1].replace(/\s+/g, '');
  let actual;
  if (stat.startsWith('p(')) {
    const p = parseFloat(stat.slice(2, -1));
    actual = vals && vals._pct ? vals._pct(p) : undefined;
  } else actual = vals ? vals[stat] : undefined;
  if (actual === undefined) actual = 0; // no samples: k6 evaluates the empty sink
  const want = parseFloat(m[3]);
  switch (m[2]) {
    case '<':
      return { ok: actual < want, actual };
    case '<=':
      return { ok: actual <= want, actual };
    case '>':
      return { ok: actual > want, actual };
    case '>=':
      return { ok: actual >= want, actual };
    case '!=':
      return { ok: actual !== want, actual };
    default:
      return { ok: actual === want, actual };
  }
}

function normalizeThresholds(thresholds) {
  const out = [];
  for (const [metric, list] of Object.entries(thresholds || {})) {
    for (const t of Array.isArray(list) ? list : [list]) {
      const expr = typeof t === 'string' ? t : t && t.threshold;
      if (!expr) continue;
      out.push({ metric, expr, abortOnFail: !!(t && t.abortOnFail), delayAbortEval: parseDuration(t && t.delayAbortEval, 0) });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// execution plan
// ---------------------------------------------------------------------------------------------

/**
 * Per-VU windows relative to the start: { startMs, stopMs (no new iterations after), hardMs
 * (interrupt), iterations (per VU or null) }, plus sharedTotal for shared-iterations.
 */
export function makePlan(options, cli) {
  const warn = [];
  let sc;
  let name = 'default';
  if (cli.vus !== null || cli.duration !== null || cli.iterations !== null) {
    const vus = cli.vus || 1;
    sc = cli.iterations !== null ? { executor: 'shared-iterations', vus, iterations: cli.iterations, maxDuration: cli.duration || 600_000 } : { executor: 'constant-vus', vus, duration: cli.duration || 10_000 };
  } else if (options.scenarios && Object.keys(options.scenarios).length) {
    const names = Object.keys(options.scenarios);
    if (names.length > 1) warn.push(`only the first scenario (${names[0]}) runs under the Node shim; ignored: ${names.slice(1).join(', ')}`);
    name = names[0];
    sc = { ...options.scenarios[name] };
    if (sc.startTime) warn.push(`scenario startTime ${sc.startTime} ignored`);
  } else if (options.stages) {
    sc = { executor: 'ramping-vus', stages: options.stages, startVUs: options.vus || 0 };
  } else if (options.iterations) {
    sc = { executor: 'shared-iterations', vus: options.vus || 1, iterations: options.iterations, maxDuration: options.duration || '10m' };
  } else if (options.duration) {
    sc = { executor: 'constant-vus', vus: options.vus || 1, duration: options.duration };
  } else {
    sc = { executor: 'per-vu-iterations', vus: 1, iterations: 1 };
  }
  const gracefulStop = parseDuration(sc.gracefulStop, 30_000);
  const vuPlans = [];
  let sharedTotal = 0;
  let totalMs;
  switch (sc.executor) {
    case 'per-vu-iterations': {
      totalMs = parseDuration(sc.maxDuration, 600_000);
      for (let i = 0; i < (sc.vus || 1); i++) vuPlans.push({ startMs: 0, stopMs: totalMs, hardMs: totalMs, iterations: sc.iterations || 1 });
      break;
    }
    case 'shared-iterations': {
      totalMs = parseDuration(sc.maxDuration, 600_000);
      sharedTotal = sc.iterations || 1;
      const vus = Math.min(sc.vus || 1, sharedTotal);
      for (let i = 0; i < vus; i++) vuPlans.push({ startMs: 0, stopMs: totalMs, hardMs: totalMs, iterations: null });
      break;
    }
    case 'ramping-vus': {
      const stages = (sc.stages || []).map((s) => ({ ms: parseDuration(s.duration, 0), target: s.target }));
      const rampDown = parseDuration(sc.gracefulRampDown, 30_000);
      totalMs = stages.reduce((a, s) => a + s.ms, 0);
      const start = sc.startVUs || 0;
      const peak = Math.max(start, ...stages.map((s) => s.target));
      // target(t): piecewise linear; VU i is active while target(t) >= i.
      const target = (t) => {
        let prev = start;
        let at = 0;
        for (const s of stages) {
          if (t < at + s.ms) return prev + ((s.target - prev) * (t - at)) / s.ms;
          at += s.ms;
          prev = s.target;
        }
        return prev;
      };
      const step = Math.max(10, Math.floor(totalMs / 20_000));
      for (let i = 1; i <= peak; i++) {
        let startMs = null;
        let stopMs = totalMs;
        for (let t = 0; t <= totalMs; t += step) {
          const on = target(t) >= i - 1e-9;
          if (on && startMs === null) startMs = t;
          if (!on && startMs !== null) {
            stopMs = t;
            break;
          }
        }
        if (startMs === null) continue;
        vuPlans.push({ startMs, stopMs, hardMs: Math.min(stopMs + rampDown, totalMs + gracefulStop), iterations: null });
      }
      break;
    }
    case 'constant-vus':
    default: {
      if (sc.executor && sc.executor !== 'constant-vus') warn.push(`executor ${sc.executor} is not emulated; running it as constant-vus`);
      totalMs = parseDuration(sc.duration, 10_000);
      const vus = sc.vus || sc.preAllocatedVUs || sc.maxVUs || 1;
      for (let i = 0; i < vus; i++) vuPlans.push({ startMs: 0, stopMs: totalMs, hardMs: totalMs + gracefulStop, iterations: null });
    }
  }
  return { scenario: name, executor: sc.executor || 'constant-vus', exec: sc.exec || 'default', vuPlans, sharedTotal, totalMs, gracefulStop, warn };
}

// ---------------------------------------------------------------------------------------------
// orchestration
// ---------------------------------------------------------------------------------------------

class VuHandle {
  constructor(vu, scriptUrl, env, scenario, sharedIterations, onMsg) {
    this.vu = vu;
    this.sab = new SharedArrayBuffer(8);
    const { port1, port2 } = new MessageChannel();
    this.waiters = new Map();
    this.host = new VuHost(vu, port1, this.sab, (msg) => {
      const w = this.waiters.get(msg.op);
      if (w) {
        this.waiters.delete(msg.op);
        w(msg);
      }
      onMsg(msg, this);
    });
    this.worker = new Worker(new URL('./vu-worker.mjs', import.meta.url), {
      workerData: { scriptUrl, vu, env, sab: this.sab, port: port2, scenario, sharedIterations },
      transferList: [port2],
      stdout: false,
      stderr: false,
    });
    this.exited = false;
    this.worker.on('error', (e) => {
      onMsg({ op: 'worker-error', error: e && e.stack ? e.stack : String(e) }, this);
      for (const [, w] of this.waiters) w({ op: 'worker-error', error: String(e && e.message) });
      this.waiters.clear();
    });
    this.worker.on('exit', () => {
      this.exited = true;
      for (const [, w] of this.waiters) w({ op: 'worker-exit' });
      this.waiters.clear();
    });
  }
  /** Resolves with the first message among `ops` (or worker-error / worker-exit / timeout). */
  waitFor(ops, timeoutMs) {
    return new Promise((res) => {
      const done = (msg) => {
        clearTimeout(t);
        for (const op of ops) this.waiters.delete(op);
        res(msg);
      };
      const t = setTimeout(() => done({ op: 'timeout' }), timeoutMs);
      for (const op of ops) this.waiters.set(op, done);
      if (this.exited) done({ op: 'worker-exit' });
    });
  }
  send(cmd) {
    this.worker.postMessage(cmd);
  }
  async kill() {
    this.host.stop();
    this.host.shutdown();
    await this.worker.terminate();
  }
}

function fmtNum(n, isTime) {
  if (isTime) {
    if (n >= 1000) return `${(n / 1000).toFixed(2)}s`;
    return `${n.toFixed(2)}ms`;
  }
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
}

function summaryTable(agg, elapsedSec, thresholdResults, checks) {
  const lines = [];
  const byMetric = new Map();
  for (const t of thresholdResults) {
    if (!byMetric.has(t.metric)) byMetric.set(t.metric, []);
    byMetric.get(t.metric).push(t);
  }
  if (checks.size) {
    lines.push('  checks:');
    for (const [name, c] of checks) lines.push(`    ${c.fails === 0 ? '✓' : '✗'} ${name}${c.fails ? `  (${c.passes} ✓ / ${c.fails} ✗)` : ''}`);
    lines.push('');
  }
  const names = [...agg.metrics.keys()].sort();
  const width = Math.max(20, ...names.map((n) => n.length)) + 2;
  for (const name of names) {
    const m = agg.metrics.get(name);
    const v = agg.values(name, elapsedSec);
    const ts = byMetric.get(name) || [];
    const mark = ts.length ? (ts.every((t) => t.ok) ? '✓' : '✗') : ' ';
    let text;
    if (m.type === 'counter') text = `${fmtNum(v.count, m.isTime)}  ${v.rate.toFixed(2)}/s`;
    else if (m.type === 'rate') text = `${(v.rate * 100).toFixed(2)}%  ✓ ${v.passes}  ✗ ${v.fails}`;
    else if (m.type === 'gauge') text = `${fmtNum(v.value, m.isTime)}  min=${fmtNum(v.min, m.isTime)} max=${fmtNum(v.max, m.isTime)}`;
    else text = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)'].map((k) => `${k}=${fmtNum(v[k], m.isTime)}`).join(' ') + `  n=${v.count}`;
    lines.push(`${mark} ${(name + ' ').padEnd(width, '.')} ${text}`);
  }
  return lines.join('\n');
}

export async function run(argv) {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error(e.message);
    return EXIT.USAGE;
  }
  if (args.help || !args.script) {
    console.error('usage: node load-tests/node/run-k6-script.mjs <script.js> [--vus N --duration 30s | --iterations N] [-e NAME=value ...] [--summary-export file] [--max-duration 15m] [--max-vus 200] [--quiet]');
    return args.help ? EXIT.OK : EXIT.USAGE;
  }
  const scriptUrl = pathToFileURL(resolve(args.script)).href;
  const env = { ...process.env, ...args.env };
  const agg = new Aggregator();
  const handles = [];
  let aborted = null;
  let scriptErrors = 0;
  const runStarted = Date.now();
  const hardCapAt = runStarted + args.maxDuration;
  const sharedIterations = new SharedArrayBuffer(4);
  const log = (...a) => {
    if (!args.quiet) console.log(...a);
  };

  const onMsg = (msg, h) => {
    switch (msg.op) {
      case 'metric.def':
        agg.define(msg.name, msg.type, msg.isTime);
        break;
      case 'metrics':
        agg.add(msg.samples);
        break;
      case 'abort':
        aborted = aborted || `test.abort(): ${msg.reason}`;
        break;
      case 'init-error':
      case 'setup-error':
      case 'teardown-error':
      case 'worker-error':
        scriptErrors++;
        console.error(`ERRO[vu=${h.vu}] ${msg.op}: ${msg.error}`);
        break;
      default:
        break;
    }
  };

  const left = () => Math.max(1, hardCapAt - Date.now());
  const killAll = async () => {
    await Promise.all(handles.map((h) => h.kill().catch(() => {})));
  };
  const hardCap = setTimeout(() => {
    aborted = aborted || `--max-duration ${args.maxDuration} ms reached`;
    for (const h of handles) h.host.stop();
  }, args.maxDuration);
  hardCap.unref();

  try {
    // 0. what a real k6 v0.48 could not parse does not run here either
    const syntax = scriptSyntaxProblem(resolve(args.script));
    if (syntax) {
      scriptErrors++;
      console.error(`ERRO[vu=0] init-error: SyntaxError: ${syntax}`);
      console.error('script init failed (init-error)');
      return EXIT.SCRIPT;
    }
    // 1. setup VU (id 0): init context -> options
    const setupVu = new VuHandle(0, scriptUrl, env, 'setup', sharedIterations, onMsg);
    handles.push(setupVu);
    const ready = await setupVu.waitFor(['ready', 'init-error', 'worker-error', 'worker-exit'], Math.min(left(), 60_000));
    if (ready.op !== 'ready') {
      console.error(`script init failed (${ready.op})`);
      return EXIT.SCRIPT;
    }
    const options = ready.options || {};
    const plan = makePlan(options, args);
    for (const w of plan.warn) console.error(`WARN ${w}`);
    const thresholds = normalizeThresholds(options.thresholds);
    for (const t of thresholds) {
      if (t.metric.includes('{')) console.error(`WARN sub-metric threshold ${t.metric} is not evaluated by the Node shim`);
    }
    if (plan.vuPlans.length > args.maxVus) {
      console.error(`plan needs ${plan.vuPlans.length} VUs, above --max-vus ${args.maxVus} (each VU is a thread); lower the script's knobs or raise --max-vus`);
      return EXIT.USAGE;
    }
    log(`scenario ${plan.scenario}: ${plan.executor}, ${plan.vuPlans.length} VUs, up to ${Math.round(plan.totalMs / 1000)}s (+${Math.round(plan.gracefulStop / 1000)}s graceful stop)`);

    // 2. init every VU (k6 initializes VUs before setup)
    const vus = plan.vuPlans.map((p, i) => new VuHandle(i + 1, scriptUrl, env, plan.scenario, sharedIterations, onMsg));
    handles.push(...vus);
    const inits = await Promise.all(vus.map((h) => h.waitFor(['ready', 'init-error', 'worker-error', 'worker-exit'], Math.min(left(), 120_000))));
    const badInit = inits.filter((m) => m.op !== 'ready').length;
    if (badInit) {
      console.error(`${badInit} VU(s) failed to initialize`);
      return EXIT.SCRIPT;
    }

    // 3. setup()
    setupVu.send({ cmd: 'setup' });
    const setupRes = await setupVu.waitFor(['setup-done', 'setup-error', 'worker-error', 'worker-exit'], Math.min(left(), parseDuration(options.setupTimeout, 60_000)));
    if (setupRes.op !== 'setup-done') {
      console.error(`setup() failed (${setupRes.op})`);
      return EXIT.SETUP;
    }
    const data = setupRes.data;

    // 4. run
    const t0 = Date.now() + 50;
    const timers = [];
    const dones = vus.map((h, i) => {
      const p = plan.vuPlans[i];
      h.send({ cmd: 'run', data, plan: { startAt: t0 + p.startMs, stopAt: t0 + p.stopMs, iterations: p.iterations, exec: plan.exec, sharedTotal: plan.sharedTotal } });
      timers.push(setTimeout(() => h.host.stop(), Math.max(0, t0 + p.hardMs - Date.now())));
      return h.waitFor(['done', 'worker-error', 'worker-exit'], left());
    });
    // abortOnFail thresholds, checked every second
    const aborting = thresholds.filter((t) => t.abortOnFail && !t.metric.includes('{'));
    let abortTimer = null;
    if (aborting.length) {
      abortTimer = setInterval(() => {
        const el = (Date.now() - t0) / 1000;
        for (const t of aborting) {
          if (Date.now() - t0 < t.delayAbortEval) continue;
          const r = evalThreshold(t.expr, agg.values(t.metric, el));
          if (!r.ok) {
            aborted = aborted || `threshold ${t.metric}: ${t.expr} crossed (abortOnFail)`;
            for (const h of vus) h.host.stop();
          }
        }
      }, 1000);
    }
    const results = await Promise.all(dones);
    for (const t of timers) clearTimeout(t);
    if (abortTimer) clearInterval(abortTimer);
    const elapsedSec = (Date.now() - t0) / 1000;
    const iterations = results.reduce((a, r) => a + (r.iterations || 0), 0);
    const interrupted = results.reduce((a, r) => a + (r.interrupted || 0), 0);

    // 5. teardown()
    setupVu.send({ cmd: 'teardown', data });
    await setupVu.waitFor(['teardown-done', 'teardown-error', 'worker-error', 'worker-exit'], Math.min(left(), parseDuration(options.teardownTimeout, 60_000)));

    // 6. thresholds + summary
    const thresholdResults = thresholds
      .filter((t) => !t.metric.includes('{'))
      .map((t) => ({ ...t, ...evalThreshold(t.expr, agg.values(t.metric, elapsedSec)) }));
    const failed = thresholdResults.filter((t) => !t.ok);
    if (!args.quiet) {
      console.log('');
      console.log(summaryTable(agg, elapsedSec, thresholdResults, agg.checks));
      console.log('');
      console.log(`iterations: ${iterations} complete, ${interrupted} interrupted; ${vus.length} VUs; ${elapsedSec.toFixed(1)}s`);
      for (const t of thresholdResults) console.log(`threshold ${t.ok ? '✓' : '✗'} ${t.metric}: ${t.expr} (actual ${fmtNum(t.actual, false)})`);
    }
    if (args.summaryExport) {
      const metrics = {};
      for (const [name, m] of agg.metrics) {
        const v = { ...agg.values(name, elapsedSec) };
        delete v._pct;
        const th = thresholdResults.filter((t) => t.metric === name);
        metrics[name] = { type: m.type, contains: m.isTime ? 'time' : 'default', values: v };
        if (th.length) metrics[name].thresholds = Object.fromEntries(th.map((t) => [t.expr, { ok: t.ok, actual: t.actual }]));
      }
      const checks = Object.fromEntries([...agg.checks].map(([k, c]) => [k, c]));
      writeFileSync(
        args.summaryExport,
        JSON.stringify({ script: args.script, scenario: plan.scenario, executor: plan.executor, vus: vus.length, elapsedSec, iterations, interrupted, aborted, scriptErrors, metrics, checks, thresholdsOk: failed.length === 0 }, null, 2),
      );
    }
    if (aborted) {
      console.error(`aborted: ${aborted}`);
      return EXIT.ABORTED;
    }
    if (failed.length) {
      console.error(`thresholds crossed: ${failed.map((t) => `${t.metric} ${t.expr}`).join(', ')}`);
      return EXIT.THRESHOLDS;
    }
    return EXIT.OK;
  } finally {
    clearTimeout(hardCap);
    await killAll();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      // Safety net: nothing may keep the process alive after the run.
      setTimeout(() => process.exit(code), 2000).unref();
    },
    (e) => {
      console.error(e && e.stack ? e.stack : e);
      process.exit(1);
    },
  );
}

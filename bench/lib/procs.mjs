// Child-process bookkeeping for the benchmark: every child is registered by PID and killed on
// exit, on error and on SIGINT/SIGTERM/SIGHUP. CPU% and RSS are read from /proc/<pid>/stat, so
// load generators, workers and redis-server are all measured the same way.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const children = new Map(); // pid -> { name, child }
let hooked = false;

function killAll(signal = 'SIGKILL') {
  for (const [pid] of children) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function installExitHooks() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => killAll('SIGKILL'));
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, killing ${children.size} child process(es)\n`);
      killAll('SIGKILL');
      process.exit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`bench: uncaught ${err?.stack ?? err}\n`);
    killAll('SIGKILL');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`bench: unhandled rejection ${err?.stack ?? err}\n`);
    killAll('SIGKILL');
    process.exit(1);
  });
}

/** Spawns and registers a child; it is forgotten once it exits. */
export function track(name, child) {
  if (child.pid) {
    children.set(child.pid, { name, child });
    child.once('exit', () => children.delete(child.pid));
  }
  return child;
}

export function spawnTracked(name, cmd, args, opts) {
  return track(name, spawn(cmd, args, opts));
}

export function liveChildren() {
  return [...children.entries()].map(([pid, c]) => ({ pid, name: c.name }));
}

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // default
}
const pageSize = 4096;

/** utime+stime in seconds and RSS in bytes of a PID, or null if it is gone. */
export function readProcStat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state): utime is field 14, stime 15, rss 24
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const rss = Number(rest[21]) * pageSize;
    return { cpuSec: (utime + stime) / clkTck, rss };
  } catch {
    return null;
  }
}

/**
 * Samples CPU% of a set of named PIDs every `intervalMs`, per phase. `phase(name)` closes the
 * current phase and opens a new one; `report()` returns { phase: { proc: { avg, max, role } } }.
 */
export class CpuSampler {
  constructor(intervalMs = 500) {
    this.intervalMs = intervalMs;
    this.procs = new Map(); // key -> { pid, role, last }
    this.phases = {};
    this.current = null;
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  watch(key, pid, role) {
    const st = readProcStat(pid);
    this.procs.set(key, { pid, role, last: st ? { ...st, t: performance.now() } : null });
  }

  unwatch(key) {
    this.sample();
    this.procs.delete(key);
  }

  phase(name) {
    this.sample();
    this.current = name;
    this.phases[name] ??= {};
  }

  /** Closes the current phase: nothing is billed to it any more. */
  endPhase() {
    this.sample();
    this.current = null;
  }

  sample() {
    const now = performance.now();
    for (const [key, p] of this.procs) {
      const st = readProcStat(p.pid);
      if (!st) continue;
      if (p.last && this.current) {
        const dt = (now - p.last.t) / 1000;
        if (dt > 0.05) {
          const pct = ((st.cpuSec - p.last.cpuSec) / dt) * 100;
          const ph = this.phases[this.current];
          const e = (ph[key] ??= { role: p.role, sum: 0, n: 0, max: 0, maxRssMB: 0 });
          e.sum += pct * dt;
          e.n += dt;
          e.max = Math.max(e.max, pct);
          e.maxRssMB = Math.max(e.maxRssMB, st.rss / 1048576);
        }
      }
      p.last = { ...st, t: now };
    }
  }

  report() {
    this.sample();
    const out = {};
    for (const [ph, procs] of Object.entries(this.phases)) {
      out[ph] = {};
      for (const [key, e] of Object.entries(procs)) {
        out[ph][key] = { role: e.role, avgPct: round(e.n ? e.sum / e.n : 0), maxPct: round(e.max), maxRssMB: round(e.maxRssMB) };
      }
    }
    return out;
  }

  stop() {
    clearInterval(this.timer);
  }
}

export const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

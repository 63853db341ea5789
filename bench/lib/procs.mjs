// Child-process bookkeeping for the benchmark: every child is registered by PID and killed on
// exit, on error and on SIGINT/SIGTERM/SIGHUP. CPU time is read from /proc/<pid>/stat, so load
// generators, workers and redis-server are all measured the same way.
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

/** Busy and total CPU seconds of the whole machine (all cores), from the first line of /proc/stat. */
export function readMachineStat() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const total = f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
    const idle = (f[3] || 0) + (f[4] || 0);
    return { busySec: (total - idle) / clkTck, totalSec: total / clkTck };
  } catch {
    return null;
  }
}

export const round = (x, d = 1) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

// The processes a benchmark run is made of: one private redis-server, app workers (Tether or a
// baseline, each preloaded with the memory probe) and load-generator processes driven over IPC.
// Every child is spawned through spawnTracked, so it is killed by PID on exit, error or signal.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient, createCluster } from 'redis';
import { readMachineStat, readProcStat, round, spawnTracked } from './procs.mjs';
import { sleep } from './util.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, '../..');
const PROBE = pathToFileURL(join(HERE, 'probe.mjs')).href;
/** BENCH_WORKER_PROF=<dir>: every worker runs under --cpu-prof, one directory per worker (README). */
export const PROFILE_DIR = process.env.BENCH_WORKER_PROF || null;
const GENERATOR = join(HERE, '../gen/generator.mjs');
export const ENTRY = {
  tether: join(ROOT, 'dist/main.js'),
  plain: join(HERE, '../baselines/plain.mjs'),
  careful: join(HERE, '../baselines/careful.mjs'),
  csr: join(HERE, '../baselines/csr.mjs'),
};
export const JWT_SECRET = 'bench-secret-0123456789abcdef';
export const SERVICE_TOKEN = 'bench-service-token-0123456789';

/** Raises the soft open-files limit to the hard one inside a child when they differ. */
export function nodeCmd(args, fdLimit) {
  if (fdLimit?.soft && fdLimit?.hard && fdLimit.soft < fdLimit.hard) {
    return ['sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...args]];
  }
  return [process.execPath, args];
}

export async function freePortFn() {
  const mod = await import(pathToFileURL(join(ROOT, 'dist/cluster/local-redis.js')).href).catch(() => null);
  if (mod?.freePort) return mod.freePort;
  const { createServer } = await import('node:net');
  return () =>
    new Promise((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => res(port));
      });
    });
}

// Commands the harness itself sends while measuring: never billed to a target.
const OWN_COMMANDS = new Set(['info', 'config|resetstat', 'flushall', 'ping', 'client|setinfo', 'hello', 'select']);

/** The private redis-server: loopback only, no persistence. */
/**
 * Every generated client comes from 127.0.0.1, which Tether's per-address new-session budget
 * (HANDSHAKES_PER_ADDRESS_PER_MIN, 120/min by default) would rightly refuse after the first few
 * hundred. Real load comes from many addresses; this setting removes an artefact of the generator,
 * not a cost, so it is listed in the output (meta.generatorEnv) but does not count as a tuning
 * override in the targets.
 */
export const ONE_ADDRESS_ENV = { HANDSHAKES_PER_ADDRESS_PER_MIN: '0' };

export class Redis {
  static async start(dir, freePort) {
    const bin = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
    if (!bin) throw new Error('redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)');
    const port = await freePort();
    const child = spawnTracked('redis', bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--maxclients', '20000'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const r = new Redis(`redis://127.0.0.1:${port}`, child);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await r.client.connect();
        await r.client.ping();
        break;
      } catch {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error('redis-server did not start');
        await sleep(100);
      }
    }
    const info = await r.client.info('server');
    r.version = /redis_version:(\S+)/.exec(info)?.[1] ?? null;
    return r;
  }

  constructor(url, child) {
    this.mode = 'standalone';
    this.masters = 1;
    this.url = url;
    this.child = child;
    this.pid = child.pid;
    this.pids = [child.pid];
    this.env = { REDIS_URL: url }; // what a worker needs to reach it
    this.own = new Map(); // command → calls the harness made (subtracted from commandstats)
    this.client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 1000 } });
    this.client.on('error', () => undefined);
  }

  /** A command of the harness's own (polling): counted so it is not billed to the target. */
  async own1(name, fn) {
    this.own.set(name, (this.own.get(name) ?? 0) + 1);
    return fn(this.client);
  }

  async flush() {
    await this.client.flushAll();
  }

  async usedMemory() {
    const info = await this.client.info('memory');
    return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
  }

  /** Redis's own CPU seconds (INFO cpu, user + sys) and per-command call counts (INFO commandstats). */
  async stats() {
    const [cpu, cmds] = await Promise.all([this.client.info('cpu'), this.client.info('commandstats')]);
    const num = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(cpu)?.[1] ?? 0);
    const calls = {};
    for (const m of cmds.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) calls[m[1]] = Number(m[2]);
    return { cpuSec: num('used_cpu_user') + num('used_cpu_sys'), calls, own: Object.fromEntries(this.own) };
  }

  async stop() {
    await this.client.quit().catch(() => undefined);
    this.child.kill('SIGKILL');
  }
}

/**
 * A private 3-master Redis Cluster on loopback (what test/helpers/redis.ts starts for the cluster
 * pass): three redis-servers with `--cluster-enabled yes` (bus ports chosen free), joined by
 * `redis-cli --cluster create --cluster-replicas 0`. Same interface as Redis: CPU, memory and
 * commandstats are summed over the masters; own1 runs through a cluster client (follows slots).
 */
export class RedisCluster {
  static async start(dir, freePort, masters = 3) {
    const bin = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
    if (!bin) throw new Error('redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)');
    const cli = (port, ...args) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 30_000 }).stdout ?? '';
    const nodes = [];
    const rc = new RedisCluster(nodes);
    try {
      for (let i = 0; i < masters; i++) {
        const [port, busPort] = [await freePort(), await freePort()];
        const child = spawnTracked(`redis${i}`, bin, [
          '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--maxclients', '20000',
          '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-port', String(busPort), '--cluster-node-timeout', '5000',
        ], { stdio: ['ignore', 'ignore', 'inherit'] });
        nodes.push({ port, child, client: createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false, connectTimeout: 1000 } }) });
      }
      const deadline = Date.now() + 10_000;
      while (!nodes.every((n) => cli(n.port, 'PING').trim() === 'PONG')) {
        if (Date.now() > deadline || nodes.some((n) => n.child.exitCode !== null)) throw new Error('redis-server (cluster node) did not start');
        await sleep(50);
      }
      const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 60_000 });
      if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}\n${created.stderr}`);
      const ready = () => nodes.every((n) => /cluster_state:ok/.test(cli(n.port, 'CLUSTER', 'INFO')) && (cli(n.port, 'CLUSTER', 'SHARDS').match(/^master$/gm) ?? []).length >= masters);
      while (!ready()) {
        if (Date.now() > deadline + 20_000) throw new Error('redis cluster did not become ready');
        await sleep(100);
      }
      for (const n of nodes) {
        n.client.on('error', () => undefined);
        await n.client.connect();
      }
      rc.client = createCluster({ rootNodes: nodes.map((n) => ({ url: `redis://127.0.0.1:${n.port}` })) });
      rc.client.on('error', () => undefined);
      await rc.client.connect();
      rc.version = /redis_version:(\S+)/.exec(await nodes[0].client.info('server'))?.[1] ?? null;
      return rc;
    } catch (err) {
      await rc.stop();
      throw err;
    }
  }

  constructor(nodes) {
    this.mode = 'cluster';
    this.nodes = nodes;
    this.own = new Map();
    this.client = null;
  }

  get masters() {
    return this.nodes.length;
  }

  get pids() {
    return this.nodes.map((n) => n.child.pid);
  }

  get seeds() {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  get env() {
    return { REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: this.seeds };
  }

  async own1(name, fn) {
    this.own.set(name, (this.own.get(name) ?? 0) + 1);
    return fn(this.client);
  }

  async flush() {
    await Promise.all(this.nodes.map((n) => n.client.flushAll()));
  }

  async usedMemory() {
    const infos = await Promise.all(this.nodes.map((n) => n.client.info('memory')));
    return infos.reduce((sum, info) => sum + Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0), 0);
  }

  async stats() {
    const per = await Promise.all(this.nodes.map((n) => Promise.all([n.client.info('cpu'), n.client.info('commandstats')])));
    let cpuSec = 0;
    const calls = {};
    for (const [cpu, cmds] of per) {
      const num = (k) => Number(new RegExp(`${k}:([\\d.]+)`).exec(cpu)?.[1] ?? 0);
      cpuSec += num('used_cpu_user') + num('used_cpu_sys');
      for (const m of cmds.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) calls[m[1]] = (calls[m[1]] ?? 0) + Number(m[2]);
    }
    return { cpuSec, calls, own: Object.fromEntries(this.own) };
  }

  async stop() {
    await this.client?.close().catch(() => undefined);
    await Promise.all(this.nodes.map((n) => (n.client.isOpen ? n.client.quit().catch(() => undefined) : undefined)));
    for (const n of this.nodes) n.child.kill('SIGKILL');
  }
}

/** One app worker process: Tether (`node dist/main.js`) or a baseline. */
export class Worker {
  constructor(ctx, target, idx, env) {
    this.ctx = ctx;
    this.target = target;
    this.idx = idx;
    this.env = env;
    this.port = null;
    this.child = null;
    this.output = [];
    this.incarnation = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get key() {
    return `${this.target}-w${this.idx}`;
  }

  get keyPrefix() {
    return `b${this.target}`;
  }

  get pid() {
    return this.child?.pid ?? null;
  }

  /** Starts (or restarts, on the same port) and waits for /readyz; resolves with ms to ready. */
  async start(extraEnv = {}) {
    const { ctx } = this;
    if (!this.port) this.port = await ctx.freePort();
    this.incarnation++;
    const env = {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(this.port),
      ...ctx.redis.env,
      KEY_PREFIX: this.keyPrefix,
      JWT_SECRET,
      SERVICE_TOKEN,
      BENCH_PROBE_DIR: ctx.probeDir,
      ...(this.target === 'tether' ? ONE_ADDRESS_ENV : {}),
      ...this.env,
      ...extraEnv,
    };
    const profile = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE_DIR, this.key)}`] : [];
    const [cmd, args] = nodeCmd(['--expose-gc', ...profile, '--import', PROBE, ENTRY[this.target]], ctx.fdLimit);
    const t0 = performance.now();
    const child = spawnTracked(`${this.key}.${this.incarnation}`, cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (d) => {
      this.output.push(...d.toString().split('\n').filter(Boolean));
      if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${this.key} exited with ${child.exitCode}:\n${this.output.slice(-20).join('\n')}`);
      try {
        const res = await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`${this.key} on ${this.port} not ready in 30 s:\n${this.output.slice(-20).join('\n')}`);
      await sleep(50);
    }
    return performance.now() - t0;
  }

  /** Sends `signal` and waits (bounded) for the exit. */
  stop(signal = 'SIGKILL', timeoutMs = 30_000) {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((res) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        res();
      });
      child.kill(signal);
    });
  }

  /** Full GC + memory figures from the preloaded probe (bench/lib/probe.mjs). */
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
    throw new Error(`memory probe of ${this.key} timed out`);
  }
}

/** One load-generator process. */
export class Gen {
  constructor(ctx, name) {
    this.ctx = ctx;
    this.name = name;
    this.pending = new Map();
    this.seq = 0;
  }

  get pid() {
    return this.child?.pid ?? null;
  }

  async start() {
    const [cmd, args] = nodeCmd([GENERATOR], this.ctx.fdLimit);
    this.child = spawnTracked(this.name, cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${this.name} did not start in 20 s`)), 20_000);
      this.readyResolve = () => {
        clearTimeout(timer);
        res();
      };
    });
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
    await ready;
  }

  call(cmd, args = {}, timeoutMs = 180_000) {
    const id = ++this.seq;
    return new Promise((res, rej) => {
      if (!this.child?.connected) return rej(new Error(`${this.name} is not running`));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        rej(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: res, reject: rej, timer });
      this.child.send({ id, cmd, args });
    });
  }

  async stop() {
    await this.call('exit', {}, 2000).catch(() => undefined);
    await sleep(50);
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/**
 * CPU and Redis meter over a window: per-process CPU seconds from /proc (workers, generators,
 * redis-server), the machine's busy share (so load from outside the benchmark shows), Redis's own
 * CPU (INFO cpu) and commands (INFO commandstats, the harness's own commands removed).
 */
export class Meter {
  constructor(ctx, procs) {
    this.ctx = ctx;
    this.procs = procs; // () => [{ key, pid, role }]
  }

  async snap() {
    const redis = await this.ctx.redis.stats();
    const proc = {};
    for (const p of this.procs()) {
      if (!p.pid) continue;
      const st = readProcStat(p.pid);
      if (st) proc[`${p.key}:${p.pid}`] = { key: p.key, role: p.role, cpuSec: st.cpuSec };
    }
    for (const pid of this.ctx.redis.pids) {
      const rp = readProcStat(pid);
      if (rp) proc[`redis:${pid}`] = { key: 'redis', role: 'redis', cpuSec: rp.cpuSec };
    }
    return { t: performance.now(), proc, machine: readMachineStat(), redis };
  }

  async begin() {
    this.a = await this.snap();
    return this;
  }

  /** Closes the window. `bgCmdsPerSec` (commands an idle pair sends anyway) is subtracted. */
  async end(bgCmdsPerSec = 0) {
    const a = this.a;
    const b = await this.snap();
    const wallSec = (b.t - a.t) / 1000;
    const cpu = { worker: 0, generator: 0, redis: 0 };
    const perProc = {};
    let partial = false;
    for (const [id, pb] of Object.entries(b.proc)) {
      // A process that started inside the window (a restarted worker) is billed from its start.
      const d = pb.cpuSec - (a.proc[id]?.cpuSec ?? 0);
      if (!a.proc[id]) partial = true;
      cpu[pb.role] = (cpu[pb.role] ?? 0) + d;
      perProc[pb.key] = round(((perProc[pb.key] ?? 0) + (100 * d) / wallSec) * 1, 1);
    }
    for (const id of Object.keys(a.proc)) if (!b.proc[id]) partial = true; // exited inside: its CPU is lost
    const cores = this.ctx.cores;
    const m = a.machine && b.machine ? { busy: b.machine.busySec - a.machine.busySec, total: b.machine.totalSec - a.machine.totalSec } : null;
    const ours = cpu.worker + cpu.generator + cpu.redis;
    const calls = {};
    let commands = 0;
    for (const [name, n] of Object.entries(b.redis.calls)) {
      if (OWN_COMMANDS.has(name)) continue;
      const d = n - (a.redis.calls[name] ?? 0) - ((b.redis.own[name] ?? 0) - (a.redis.own[name] ?? 0));
      if (d > 0) {
        calls[name] = d;
        commands += d;
      }
    }
    const gens = Object.entries(perProc).filter(([k]) => k.startsWith('gen') || k === 'publisher');
    return {
      wallSec: round(wallSec, 3),
      cpuSec: { worker: round(cpu.worker, 3), generator: round(cpu.generator, 3), redisProc: round(cpu.redis, 3), redisInfo: round(b.redis.cpuSec - a.redis.cpuSec, 3) },
      perProcPct: perProc,
      generatorsPct: round((100 * cpu.generator) / wallSec),
      generatorMaxPct: gens.length ? Math.max(...gens.map(([, v]) => v)) : 0,
      machineBusyPct: m && m.total > 0 ? round((100 * m.busy) / m.total) : null,
      otherLoadPct: m && m.total > 0 ? round(Math.max(0, (100 * (m.busy - ours)) / m.total)) : null,
      cores,
      commands: round(Math.max(0, commands - bgCmdsPerSec * wallSec), 0),
      commandsRaw: commands,
      topCommands: Object.entries(calls)
        .sort((x, y) => y[1] - x[1])
        .slice(0, 8),
      partial,
    };
  }
}

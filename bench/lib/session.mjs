// One target's processes for one measured run: two app workers, the client generators and
// (for outage scenarios) an HTTP publisher, plus the helpers every scenario uses to place clients,
// create rooms and connect. A full run starts a fresh session per (scenario, target, repeat).
import { Gen, Meter, PROFILE_DIR, SERVICE_TOKEN, JWT_SECRET, Worker } from './infra.mjs';
import { signJwt, sleep } from './util.mjs';

export class Session {
  /** `fixedNodeIds`: each worker keeps one NODE_ID across restarts (as `npm start` respawns do). */
  constructor(ctx, target, env, { fixedNodeIds = false } = {}) {
    this.ctx = ctx;
    this.target = target;
    this.env = env; // overrides of the target's defaults (printed)
    this.workers = [0, 1].map((i) => new Worker(ctx, target, i, fixedNodeIds ? { ...env, NODE_ID: `${target}-w${i}` } : env));
    this.gens = Array.from({ length: ctx.sizes.generators }, (_, i) => new Gen(ctx, `gen${i}`));
    this.publisher = new Gen(ctx, 'publisher');
    this.bgCmdsPerSec = 0;
    this.publishers = this.gens.map(() => 0); // socket publishers held by each generator
  }

  get urls() {
    return this.workers.map((w) => w.url);
  }

  /** The generator processes that are running (the HTTP publisher starts on first use). */
  get allGens() {
    return this.publisher.pid ? [...this.gens, this.publisher] : this.gens;
  }

  async start({ flush = true } = {}) {
    if (flush) await this.ctx.redis.flush();
    await Promise.all([...this.workers.map((w) => w.start()), ...this.gens.map((g) => g.start())]);
    await Promise.all(this.gens.map((g) => g.call('init', { target: this.target, reconnectJitterMs: this.ctx.sizes.jitterMs })));
    return this;
  }

  async startPublisher() {
    if (this.publisher.pid) return;
    await this.publisher.start();
    await this.publisher.call('init', { target: this.target });
  }

  async close() {
    await Promise.all(this.allGens.map((g) => g.stop()));
    // A profiled worker writes its profile on a clean exit only.
    await Promise.all(this.workers.map((w) => (PROFILE_DIR ? w.stop('SIGTERM', 15_000) : w.stop('SIGKILL', 5000))));
  }

  meter() {
    return new Meter(this.ctx, () => [
      ...this.workers.map((w) => ({ key: w.key, pid: w.pid, role: 'worker' })),
      ...this.allGens.map((g) => ({ key: g.name, pid: g.pid, role: 'generator' })),
    ]);
  }

  /** Redis commands per second that an idle pair sends anyway (heartbeats, queue polling). */
  async measureBackground(ms) {
    const m = await this.meter().begin();
    await sleep(ms);
    const c = await m.end();
    this.bgCmdsPerSec = c.commandsRaw / c.wallSec;
    return this.bgCmdsPerSec;
  }

  async closeClients() {
    await Promise.all(this.allGens.map((g) => g.call('closeAll', {}, 30_000).catch(() => undefined)));
    this.publishers = this.gens.map(() => 0);
  }

  async createRooms(n) {
    // One creating user per room, as in an app where users create their own rooms: Tether's
    // per-user room-creation budget (ROOM_CREATES_PER_USER_PER_MIN) would otherwise refuse the
    // 31st room of a scenario. A generator artefact, not a cost; nobody joins as these users.
    const tokenFor = (i) => signJwt({ sub: `bench-host-${i}`, name: 'bench' }, JWT_SECRET);
    const rooms = [];
    let next = 0;
    const one = async () => {
      while (next < n) {
        const i = next++;
        let lastErr;
        for (let attempt = 0; attempt < 3; attempt++) {
          try {
            // Rooms are created on both workers alike; maxParticipants is left to the server's default.
            const res = await fetch(`${this.urls[i % 2]}/v1/rooms`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenFor(i)}` },
              body: JSON.stringify({ name: 'bench' }),
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

  /**
   * Connects and joins clients placed by `placement`, spread over the generators; returns the
   * outcome with the real placement (members of each room per worker, counted from the joins that
   * succeeded).
   */
  async connect(specs, concurrency = this.ctx.sizes.concurrency) {
    const per = this.gens.map(() => []);
    for (const s of specs) per[s.gi % this.gens.length].push(s);
    const each = Math.max(1, Math.ceil(concurrency / this.gens.length));
    const t0 = performance.now();
    const rs = await Promise.all(this.gens.map((g, i) => (per[i].length ? g.call('connect', { urls: this.urls, clients: per[i], concurrency: each }, 600_000) : null)));
    const ms = performance.now() - t0;
    const placed = {};
    let ok = 0;
    let failed = 0;
    let nodeIds = {};
    rs.forEach((r, i) => {
      if (!r) return;
      ok += r.ok;
      failed += r.failed;
      this.publishers[i] += r.publishers;
      nodeIds = { ...nodeIds, ...r.nodeIds };
      for (const [room, [a, b]] of Object.entries(r.placed)) {
        const p = (placed[room] ??= [0, 0]);
        p[0] += a;
        p[1] += b;
      }
    });
    if (failed) this.ctx.warn(`${this.target}: ${failed} of ${specs.length} clients failed to connect/join (${rs.flatMap((r) => r?.errors ?? []).slice(0, 2).join('; ')})`);
    return { ok, failed, ms, placed, nodeIds, publishers: this.publishers.reduce((a, b) => a + b, 0) };
  }

  async gensCall(cmd, args, timeoutMs) {
    return Promise.all(this.gens.map((g) => g.call(cmd, args, timeoutMs)));
  }

  async presence() {
    const ps = await this.gensCall('presenceRead');
    return ps.reduce((a, p) => ({ joined: a.joined + p.joined, left: a.left + p.left, batches: a.batches + p.batches, replayed: a.replayed + p.replayed }), { joined: 0, left: 0, batches: 0, replayed: 0 });
  }

  publishToken() {
    return SERVICE_TOKEN;
  }
}

/**
 * Clients of `rooms` rooms × `members` members. Member k of room r is client gi = k·rooms + r (so
 * joins fill every room in parallel) on worker (k + r) mod 2: every room with two or more members
 * has members on both workers, and its first `publishers` members (k = 0, 1, …) alternate workers
 * too, so publishes cross workers in both directions.
 */
export function placement(rooms, members, publishers = 0) {
  const specs = [];
  for (let k = 0; k < members; k++) {
    for (let r = 0; r < rooms.length; r++) specs.push({ gi: k * rooms.length + r, roomId: rooms[r], worker: (k + r) % 2, publisher: k < publishers });
  }
  return specs;
}

/** What the output says about placement, computed from the joins that succeeded. */
export function describePlacement(placed, publishersPerRoom) {
  const rooms = Object.values(placed);
  const spanning = rooms.filter(([a, b]) => a > 0 && b > 0).length;
  const shares = rooms.map(([a, b]) => (a + b ? a / (a + b) : 0));
  return {
    rooms: rooms.length,
    roomsSpanningBothWorkers: spanning,
    worker0ShareMin: shares.length ? Math.round(Math.min(...shares) * 100) : null,
    worker0ShareMax: shares.length ? Math.round(Math.max(...shares) * 100) : null,
    members: rooms.reduce((s, [a, b]) => s + a + b, 0),
    publishersPerRoom,
  };
}

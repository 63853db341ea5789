// Load-generator child process. Driven by the harness over IPC ({ id, cmd, args } → { id, result
// | error }). One process holds a pool of simulated clients (socket.io-client, websocket only) and/or
// a publisher. A small per-target protocol adapter (adapters.mjs) hides how Tether, the plain
// baseline and the connection-state-recovery baseline join, rejoin and recover.
import { io } from 'socket.io-client';
import { makeAdapter } from './adapters.mjs';

const HIST_MAX = 10_000; // latency histogram: 1 ms buckets up to 10 s
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let target = 'tether';
let adapter;
const clients = [];
const pool = {
  counting: new Map(), // step -> { delivered, hist }
  storm: null, // { t0 }
  presence: 0,
  presenceReplayed: 0,
  reconnectJitterMs: 1000,
  errors: [],
};

function err(msg) {
  if (pool.errors.length < 20) pool.errors.push(String(msg).slice(0, 200));
}

class Client {
  constructor(gi, urls, worker, roomId) {
    this.gi = gi;
    this.urls = urls;
    this.worker = worker;
    this.roomId = roomId;
    this.socket = null;
    this.state = {}; // adapter-owned (clientId, sessionToken, pid, offset, seq…)
    this.nContig = 0;
    this.nAbove = new Set();
    this.dups = 0;
    this.reset();
  }

  reset() {
    this.affected = false;
    this.disconnectedAt = 0;
    this.rejoinedAt = 0;
    this.completeAt = 0;
    this.rejoined = true;
    this.recovered = false;
    this.snapshot = false;
    this.missedDelivered = 0;
    this.rejoinError = null;
    this.attempts = 0;
    this.connectedAt = 0;
    this.reconnectTarget = null; // 'other' | 'same'
  }

  open(url) {
    const s = io(`${url}/sync`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 10_000, autoConnect: false, auth: {} });
    this.socket = s;
    s.on('room:event', (p) => this.onEvent(p));
    for (const ev of ['room:participant:joined', 'room:participant:left', 'room:presence'])
      s.on(ev, () => {
        if (this.replaying) pool.presenceReplayed++;
        else pool.presence++;
      });
    s.on('disconnect', (reason) => this.onDisconnect(s, reason));
    adapter.install(this, s);
    return s;
  }

  async connectAndJoin() {
    const s = this.open(this.urls[this.worker]);
    await adapter.connect(this, s, false);
    await adapter.join(this, s);
  }

  onEvent(p) {
    const d = p?.data;
    if (!d || typeof d.n !== 'number') return;
    const n = d.n;
    if (n <= this.nContig || this.nAbove.has(n)) {
      this.dups++;
      return;
    }
    if (n === this.nContig + 1) {
      this.nContig++;
      while (this.nAbove.delete(this.nContig + 1)) this.nContig++;
    } else this.nAbove.add(n);
    const now = Date.now();
    if (d.step !== undefined) {
      const c = pool.counting.get(d.step);
      if (c) {
        c.delivered++;
        c.hist[Math.min(HIST_MAX, Math.max(0, now - d.t))]++;
      }
    }
    if (this.affected && d.t >= this.disconnectedAt && (!this.rejoinedAt || d.t <= this.rejoinedAt)) this.missedDelivered++;
    this.updateComplete(now);
  }

  received() {
    return this.nContig + this.nAbove.size;
  }

  updateComplete(now = Date.now()) {
    if (!this.affected) return;
    if (this.rejoined && this.nAbove.size === 0) {
      if (!this.completeAt) this.completeAt = now;
    } else this.completeAt = 0;
  }

  onDisconnect(s, reason) {
    if (s !== this.socket || reason === 'io client disconnect' || this.closing) return;
    if (!pool.storm) return; // not a scenario that expects disconnects
    this.affected = true;
    this.rejoined = false;
    this.completeAt = 0;
    this.disconnectedAt ||= Date.now();
    const target = this.reconnectTarget ?? 'other';
    const delay = this.reconnectDelayMs ?? Math.random() * pool.reconnectJitterMs;
    setTimeout(() => this.reconnect(target).catch((e) => (this.rejoinError = String(e?.message ?? e))), delay);
  }

  async reconnect(which) {
    const deadline = Date.now() + 60_000;
    let w = which === 'same' ? this.worker : 1 - this.worker;
    for (let attempt = 0; attempt < 40 && Date.now() < deadline && !this.closing; attempt++) {
      const old = this.socket;
      const s = this.open(this.urls[w]);
      try {
        this.attempts = (this.attempts ?? 0) + 1;
        await adapter.connect(this, s, true, old);
        this.connectedAt = Date.now();
        old.removeAllListeners();
        old.close();
        this.worker = w;
        this.replaying = true;
        try {
          await adapter.rejoin(this, s);
        } finally {
          this.replaying = false;
        }
        this.rejoined = true;
        this.rejoinedAt = Date.now();
        this.updateComplete(this.rejoinedAt);
        return;
      } catch (e) {
        s.removeAllListeners();
        s.close();
        this.socket = old;
        this.rejoinError = String(e?.message ?? e);
        w = this.urls.length > 1 ? 1 - w : w;
        await sleep(250 + Math.random() * 250);
      }
    }
    throw new Error(`gave up reconnecting: ${this.rejoinError}`);
  }
}

async function runLimited(items, concurrency, fn) {
  let i = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (i < items.length) {
      const item = items[i++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}

// ---------------------------------------------------------------- publisher
const pub = { timer: null, sockets: new Map(), n: new Map(), ok: new Map(), okByStep: new Map(), errors: 0, inflight: 0, acked: 0 };

async function pubConnect({ urls, rooms }) {
  // One publishing socket per room (fan-out scenario), joined like any member.
  await runLimited(rooms.map((r, i) => ({ r, i })), 20, async ({ r, i }) => {
    const c = new Client(-1 - i, urls, i % urls.length, r);
    c.isPublisher = true;
    await c.connectAndJoin();
    pub.sockets.set(r, c.socket);
  });
  return { sockets: pub.sockets.size };
}

function sendOne(mode, roomId, url, n, step, token) {
  const data = { n, t: Date.now(), ...(step !== undefined ? { step } : {}) };
  pub.inflight++;
  const done = (ok) => {
    pub.inflight--;
    if (ok) {
      pub.acked++;
      pub.ok.set(roomId, (pub.ok.get(roomId) ?? 0) + 1);
      if (step !== undefined) {
        const m = pub.okByStep.get(step) ?? new Map();
        pub.okByStep.set(step, m);
        m.set(roomId, (m.get(roomId) ?? 0) + 1);
      }
    } else pub.errors++;
  };
  if (mode === 'socket') {
    const s = pub.sockets.get(roomId);
    s.timeout(10_000).emit('room:publish', { type: 'bench', data, clientMsgId: `b${n}` }, (e, ack) => {
      if (!e && !ack?.ok) err(`publish: ${JSON.stringify(ack?.error)}`);
      done(!e && ack?.ok);
    });
    return;
  }
  const attempt = (k) =>
    fetch(`${url}/v1/rooms/${roomId}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ type: 'bench', data, idempotencyKey: `b${roomId}-${n}` }),
      signal: AbortSignal.timeout(10_000),
    }).then(
      async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) return done(true);
        err(`http publish ${res.status}`);
        if (k < 5 && res.status >= 500) return setTimeout(() => attempt(k + 1), 100);
        done(false);
      },
      (e) => {
        if (k < 5) return setTimeout(() => attempt(k + 1), 100);
        err(`http publish: ${e?.message}`);
        done(false);
      },
    );
  attempt(0);
}

function pubStart({ mode, rooms, ratePerSec, step, url, token, maxInflight = 500 }) {
  pubStop();
  let credit = 0;
  let ri = 0;
  let last = performance.now();
  pub.timer = setInterval(() => {
    const now = performance.now();
    credit += ((now - last) / 1000) * ratePerSec;
    last = now;
    while (credit >= 1) {
      if (pub.inflight >= maxInflight) {
        credit = Math.min(credit, ratePerSec); // back-pressure: do not bank unbounded credit
        break;
      }
      credit--;
      const roomId = rooms[ri++ % rooms.length];
      const n = (pub.n.get(roomId) ?? 0) + 1;
      pub.n.set(roomId, n);
      sendOne(mode, roomId, url, n, step, token);
    }
  }, 5);
  return { started: true };
}

function pubStop() {
  if (pub.timer) clearInterval(pub.timer);
  pub.timer = null;
}

async function pubDrain(timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (pub.inflight > 0 && Date.now() < deadline) await sleep(20);
  const byStep = {};
  for (const [k, m] of pub.okByStep) byStep[k] = Object.fromEntries(m);
  return { published: Object.fromEntries(pub.ok), publishedByStep: byStep, sent: Object.fromEntries(pub.n), errors: pub.errors, inflight: pub.inflight };
}

// ---------------------------------------------------------------- commands
const commands = {
  init(args) {
    target = args.target;
    adapter = makeAdapter(target, args);
    pool.reconnectJitterMs = args.reconnectJitterMs ?? 1000;
    return { pid: process.pid };
  },

  async connect({ urls, clients: specs, concurrency = 100 }) {
    const t0 = performance.now();
    let ok = 0;
    let failed = 0;
    await runLimited(specs, concurrency, async ({ gi, worker, roomId }) => {
      const c = new Client(gi, urls, worker, roomId);
      try {
        await c.connectAndJoin();
        clients.push(c);
        ok++;
      } catch (e) {
        failed++;
        err(`connect: ${e?.message ?? e}`);
        c.closing = true;
        c.socket?.close();
      }
    });
    return { ok, failed, ms: performance.now() - t0, total: clients.length, errors: pool.errors.slice(0, 5) };
  },

  countStep({ step }) {
    pool.counting.set(step, { delivered: 0, hist: new Uint32Array(HIST_MAX + 1) });
    return {};
  },

  stepStats({ step }) {
    const c = pool.counting.get(step);
    if (!c) return { delivered: 0, hist: {} };
    const hist = {};
    c.hist.forEach((v, i) => {
      if (v) hist[i] = v;
    });
    return { delivered: c.delivered, hist };
  },

  stormStart({ jitterMs }) {
    pool.storm = { t0: Date.now() };
    pool.presence = 0;
    pool.presenceReplayed = 0;
    if (jitterMs !== undefined) pool.reconnectJitterMs = jitterMs;
    for (const c of clients) {
      c.reset();
      c.dupsBase = c.dups;
    }
    let seqLag = 0;
    for (const c of clients) seqLag += (c.state.maxSeq ?? 0) - (c.state.seqContig ?? 0);
    return { t0: pool.storm.t0, seqLag };
  },

  /** Catch-up: drops selected clients' transports (a network loss), reconnects after awayMs. */
  drop({ mod, rem, awayMs }) {
    let n = 0;
    for (const c of clients) {
      if (c.gi % mod !== rem) continue;
      c.reconnectTarget = 'same';
      c.reconnectDelayMs = awayMs;
      c.socket.io.engine.close();
      n++;
    }
    return { dropped: n };
  },

  stormProgress() {
    let affected = 0;
    let rejoined = 0;
    let complete = 0;
    for (const c of clients) {
      if (!c.affected) continue;
      affected++;
      if (c.rejoined) rejoined++;
      if (c.completeAt) complete++;
    }
    return { affected, rejoined, complete, presence: pool.presence };
  },

  stormFinal({ published }) {
    const t0 = pool.storm?.t0 ?? 0;
    const phase = { connect: [], rejoin: [], attempts: 0 };
    const out = { phase, affected: 0, rejoined: 0, recovered: 0, snapshot: 0, complete: 0, rejoinMs: [], completeMs: [], missedDelivered: 0, lostAffected: 0, lostUnaffected: 0, dups: 0, presence: pool.presence, presenceReplayed: pool.presenceReplayed, rejoinErrors: 0, clients: clients.length, silentLoss: 0 };
    for (const c of clients) {
      const p = published[c.roomId] ?? 0;
      const lost = Math.max(0, p - c.received());
      out.dups += c.dups - (c.dupsBase ?? 0);
      if (!c.affected) {
        out.lostUnaffected += lost;
        continue;
      }
      out.affected++;
      phase.attempts += c.attempts ?? 0;
      phase.seqLag = (phase.seqLag ?? 0) + (c.seqLagAtRejoin ?? 0);
      phase.dupClients = (phase.dupClients ?? 0) + (c.dups - (c.dupsBase ?? 0) > 0 ? 1 : 0);
      if (c.connectedAt) phase.connect.push(c.connectedAt - c.disconnectedAt);
      if (c.rejoined && c.connectedAt) phase.rejoin.push(c.rejoinedAt - c.connectedAt);
      if (c.rejoined) {
        out.rejoined++;
        out.rejoinMs.push(c.rejoinedAt - t0);
      }
      if (c.rejoinError && !c.rejoined) out.rejoinErrors++;
      if (c.recovered) out.recovered++;
      if (c.snapshot) out.snapshot++;
      out.missedDelivered += c.missedDelivered;
      out.lostAffected += lost;
      if (lost > 0 && !c.snapshot && !c.toldNotRecovered) out.silentLoss++;
      if (c.rejoined && lost === 0 && c.completeAt) {
        out.complete++;
        out.completeMs.push(c.completeAt - t0);
      }
    }
    out.errors = pool.errors.slice(0, 5);
    return out;
  },

  stormStop() {
    pool.storm = null;
    for (const c of clients) {
      c.reconnectTarget = null;
      c.reconnectDelayMs = undefined;
    }
    return {};
  },

  pubConnect,
  pubStart,
  pubStop() {
    pubStop();
    return {};
  },
  pubDrain,
  pubReset() {
    pubStop();
    pub.n.clear();
    pub.ok.clear();
    pub.okByStep.clear();
    pub.errors = 0;
    pub.acked = 0;
    return {};
  },

  async closeAll() {
    pubStop();
    for (const c of clients) {
      c.closing = true;
      c.socket?.close();
    }
    for (const s of pub.sockets.values()) s.close();
    pub.sockets.clear();
    clients.length = 0;
    pool.counting.clear();
    pool.storm = null;
    pool.errors.length = 0;
    return {};
  },

  exit() {
    setTimeout(() => process.exit(0), 10);
    return {};
  },
};

process.on('message', async (msg) => {
  const { id, cmd, args } = msg ?? {};
  try {
    const fn = commands[cmd];
    if (!fn) throw new Error(`unknown command ${cmd}`);
    const result = await fn(args ?? {});
    process.send?.({ id, result });
  } catch (e) {
    process.send?.({ id, error: String(e?.stack ?? e) });
  }
});
process.on('disconnect', () => process.exit(0)); // harness gone: never linger
process.on('unhandledRejection', (e) => err(`unhandled: ${e?.message ?? e}`));
process.send?.({ ready: true, pid: process.pid });

// Load-generator child process, driven by the harness over IPC ({ id, cmd, args } → { id, result
// | error }). One process holds simulated clients (socket.io-client, websocket only, each pinned to
// one worker), some of which publish into their own room, and/or an HTTP publisher (a backend
// service publishing over POST /v1/rooms/:id/events). A per-target protocol adapter
// (adapters.mjs) hides how Tether and the baselines join, rejoin and recover.
//
// Every published event carries { p: publisher id, n: that publisher's counter, t: send time,
// s: step }: receivers find gaps and duplicates per publisher, count deliveries and latency per
// step, and record when each event missed during an outage arrived, so the harness can count
// missed events from what the publisher says it published, not from what receivers got.
import { io } from 'socket.io-client';
import { makeAdapter } from './adapters.mjs';

const HIST_MAX = 10_000; // latency histogram: 1 ms buckets up to 10 s
const HTTP_STREAM = 'h'; // publisher id of the HTTP publisher
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let adapter;
const clients = [];
const pool = {
  steps: new Map(), // step → { delivered, hist }
  presence: { joined: 0, left: 0, batches: 0, replayed: 0 },
  outage: null, // { t0 } while clients are expected to drop and come back
  reconnectJitterMs: 1000,
  nodeIds: {},
  errors: [],
};

function err(msg) {
  if (pool.errors.length < 20) pool.errors.push(String(msg).slice(0, 200));
}

class Client {
  constructor({ gi, roomId, worker, publisher }, urls) {
    this.gi = gi;
    this.urls = urls;
    this.worker = worker;
    this.roomId = roomId;
    this.publisher = Boolean(publisher);
    this.pubId = `c${gi}`;
    this.pubN = 0;
    this.socket = null;
    this.state = {}; // adapter-owned (clientId, sessionToken, seqs …)
    this.streams = new Map(); // publisher id → { contig, above: Set }
    this.dups = 0;
    this.gapFilled = 0; // events that only arrived through a gap fill (a lost broadcast)
    this.resetOutage();
  }

  resetOutage() {
    this.affected = false;
    this.dropAt = 0;
    this.held = null; // the HTTP stream as held when the transport dropped
    this.connectedAt = 0;
    this.rejoinedAt = 0;
    this.rejoined = true;
    this.recovered = false;
    this.snapshot = false;
    this.told = false; // the server said "you lost state" (snapshot, recovered: false, evicted)
    this.toldWhy = null;
    this.rejoinError = null;
    this.attempts = 0;
    this.failures = []; // [reason, ms the attempt took] per failed attempt
    this.arrivals = []; // [n, ms, …] of HTTP-stream events received after the drop
    this.dupsBase = this.dups;
    this.gapFilledBase = this.gapFilled;
    this.reconnectTo = 'other';
    this.reconnectDelayMs = undefined;
  }

  open(url) {
    const s = io(`${url}/sync`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 10_000, autoConnect: false, auth: {} });
    this.socket = s;
    s.on('room:event', (p) => this.onEvent(p));
    const count = (kind) => () => {
      if (this.replaying) pool.presence.replayed++;
      else pool.presence[kind]++;
    };
    s.on('room:participant:joined', count('joined'));
    s.on('room:participant:left', count('left'));
    s.on('room:presence', count('batches'));
    s.on('disconnect', (reason) => this.onDisconnect(s, reason));
    adapter.install(this, s);
    return s;
  }

  async connectAndJoin() {
    const s = this.open(this.urls[this.worker]);
    const session = await adapter.connect(this, s, false);
    if (session?.nodeId) pool.nodeIds[this.worker] = session.nodeId;
    await adapter.join(this, s);
  }

  countReplayedPresence() {
    pool.presence.replayed++;
  }

  stream(p) {
    let st = this.streams.get(p);
    if (!st) this.streams.set(p, (st = { contig: 0, above: new Set() }));
    return st;
  }

  onEvent(p) {
    const d = p?.data;
    if (!d || typeof d.n !== 'number' || typeof d.p !== 'string') return;
    const n = d.n;
    const st = this.stream(d.p);
    if (n <= st.contig || st.above.has(n)) {
      this.dups++;
      return;
    }
    if (this.filling) this.gapFilled++;
    if (n === st.contig + 1) {
      st.contig++;
      while (st.above.delete(st.contig + 1)) st.contig++;
    } else st.above.add(n);
    const now = Date.now();
    if (d.s !== undefined && !this.replaying) {
      let c = pool.steps.get(d.s);
      if (!c) pool.steps.set(d.s, (c = { delivered: 0, hist: new Uint32Array(HIST_MAX + 1) }));
      c.delivered++;
      c.hist[Math.min(HIST_MAX, Math.max(0, now - d.t))]++;
    }
    if (this.affected && d.p === HTTP_STREAM) this.arrivals.push(n, now);
  }

  onDisconnect(s, reason) {
    if (s !== this.socket || reason === 'io client disconnect' || this.closing) return;
    if (!pool.outage) {
      err(`unexpected disconnect of client ${this.gi}: ${reason}`);
      return;
    }
    if (!this.affected) {
      this.affected = true;
      this.dropAt = Date.now();
      const st = this.stream(HTTP_STREAM);
      this.held = { contig: st.contig, above: [...st.above] };
    }
    this.rejoined = false;
    const delay = this.reconnectDelayMs ?? Math.random() * pool.reconnectJitterMs;
    setTimeout(() => this.reconnect(this.reconnectTo).catch((e) => (this.rejoinError = String(e?.message ?? e))), delay);
  }

  async reconnect(which) {
    const deadline = Date.now() + 60_000;
    let w = which === 'same' ? this.worker : 1 - this.worker;
    for (let attempt = 0; attempt < 40 && Date.now() < deadline && !this.closing; attempt++) {
      const old = this.socket;
      const s = this.open(this.urls[w]);
      const tryAt = Date.now();
      try {
        this.attempts++;
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
        return;
      } catch (e) {
        s.removeAllListeners();
        // Give up on this attempt as a client on a bad link does: drop the transport. socket.close()
        // alone sends a namespace DISCONNECT when the socket is connected, which Tether takes as a
        // deliberate leave (the seat goes, and the next attempt's rejoin finds NOT_IN_ROOM).
        s.io.engine?.close();
        s.close();
        this.socket = old;
        this.rejoinError = String(e?.message ?? e);
        this.failures.push(this.rejoinError.slice(0, 80), Date.now() - tryAt);
        w = this.urls.length > 1 ? 1 - w : w;
        await sleep(250 + Math.random() * 250);
      }
    }
    throw new Error(`gave up reconnecting: ${this.rejoinError}`);
  }

  /** One room:publish from this member (fan-out scenarios). */
  publish(step) {
    const n = ++this.pubN;
    const data = { p: this.pubId, n, t: Date.now(), s: step };
    const rec = pubStep(step);
    rec.sent++;
    pub.inflight++;
    this.socket.timeout(10_000).emit('room:publish', { type: 'bench', data, clientMsgId: `m${n}` }, (e, ack) => {
      pub.inflight--;
      if (!e && ack?.ok) rec.ok.set(this.roomId, (rec.ok.get(this.roomId) ?? 0) + 1);
      else {
        rec.errors++;
        err(`publish: ${e ? e.message : JSON.stringify(ack?.error)}`);
      }
    });
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

// ---------------------------------------------------------------- socket publishers (members)
const pub = { timer: null, steps: new Map(), inflight: 0 };

function pubStep(step) {
  let r = pub.steps.get(step);
  if (!r) pub.steps.set(step, (r = { sent: 0, ok: new Map(), errors: 0, t0: performance.now(), t1: 0 }));
  return r;
}

function pubStart({ step, ratePerSec, maxInflight = 2000 }) {
  pubStop();
  const pubs = clients.filter((c) => c.publisher && c.socket?.connected);
  pubStep(step).t0 = performance.now();
  if (!pubs.length || ratePerSec <= 0) return { publishers: pubs.length };
  let credit = 0;
  let i = 0;
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
      pubs[i++ % pubs.length].publish(step);
    }
  }, 5);
  return { publishers: pubs.length };
}

function pubStop() {
  if (pub.timer) clearInterval(pub.timer);
  pub.timer = null;
}

// ---------------------------------------------------------------- HTTP publisher (a backend)
const http = { timer: null, rooms: new Map(), inflight: 0, errors: 0 };

function httpSend(roomId, ri, urls, token) {
  const r = http.rooms.get(roomId);
  const n = ++r.n;
  r.sent.push(Date.now());
  r.acked.push(0);
  const data = { p: HTTP_STREAM, n, t: r.sent[n - 1] };
  http.inflight++;
  const done = (ok) => {
    http.inflight--;
    if (ok) r.acked[n - 1] = 1;
    else http.errors++;
  };
  // Publishes alternate between the workers; a refused or failed one is retried on the other
  // (Tether dedups by idempotencyKey; the receivers drop duplicates by (p, n) for the baselines).
  const attempt = (k) => {
    const url = urls[(n + ri + k) % urls.length];
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
        if (k < 6 && res.status >= 500) return setTimeout(() => attempt(k + 1), k ? 100 : 0);
        done(false);
      },
      (e) => {
        if (k < 6) return setTimeout(() => attempt(k + 1), k ? 100 : 0);
        err(`http publish: ${e?.message}`);
        done(false);
      },
    );
  };
  attempt(0);
}

function httpPubStart({ urls, rooms, ratePerSec, token, maxInflight = 500 }) {
  httpPubStop();
  for (const r of rooms) if (!http.rooms.has(r)) http.rooms.set(r, { n: 0, sent: [], acked: [] });
  let credit = 0;
  let i = 0;
  let last = performance.now();
  http.timer = setInterval(() => {
    const now = performance.now();
    credit += ((now - last) / 1000) * ratePerSec;
    last = now;
    while (credit >= 1) {
      if (http.inflight >= maxInflight) {
        credit = Math.min(credit, ratePerSec);
        break;
      }
      credit--;
      const ri = i++ % rooms.length;
      httpSend(rooms[ri], ri, urls, token);
    }
  }, 5);
  return {};
}

function httpPubStop() {
  if (http.timer) clearInterval(http.timer);
  http.timer = null;
}

// ---------------------------------------------------------------- commands
const commands = {
  init(args) {
    adapter = makeAdapter(args.target);
    pool.reconnectJitterMs = args.reconnectJitterMs ?? 1000;
    return { pid: process.pid };
  },

  async connect({ urls, clients: specs, concurrency = 100 }) {
    const t0 = performance.now();
    let ok = 0;
    let failed = 0;
    const placed = {}; // roomId → [members on worker 0, on worker 1]
    let publishers = 0;
    await runLimited(specs, concurrency, async (spec) => {
      const c = new Client(spec, urls);
      try {
        await c.connectAndJoin();
        clients.push(c);
        ok++;
        (placed[spec.roomId] ??= [0, 0])[spec.worker]++;
        if (c.publisher) publishers++;
      } catch (e) {
        failed++;
        err(`connect: ${e?.message ?? e}`);
        c.closing = true;
        c.socket?.close();
      }
    });
    return { ok, failed, ms: performance.now() - t0, placed, publishers, nodeIds: pool.nodeIds, errors: pool.errors.slice(0, 5) };
  },

  stepCount({ step }) {
    return { delivered: pool.steps.get(step)?.delivered ?? 0 };
  },

  stepStats({ step }) {
    const c = pool.steps.get(step);
    const hist = {};
    c?.hist.forEach((v, i) => {
      if (v) hist[i] = v;
    });
    return { delivered: c?.delivered ?? 0, hist };
  },

  presenceReset() {
    pool.presence = { joined: 0, left: 0, batches: 0, replayed: 0 };
    return {};
  },
  presenceRead() {
    return { ...pool.presence };
  },

  /** From now on a dropped client is "affected" and comes back (to the other worker by default). */
  outageStart({ jitterMs }) {
    pool.outage = { t0: Date.now() };
    if (jitterMs !== undefined) pool.reconnectJitterMs = jitterMs;
    for (const c of clients) c.resetOutage();
    return { t0: pool.outage.t0 };
  },

  /**
   * Drops the transports of the selected clients (a network loss); they come back to the same
   * worker after awayMs (or after the uniform reconnect jitter when awayMs is null).
   */
  drop({ gis, awayMs }) {
    const want = new Set(gis);
    let n = 0;
    for (const c of clients) {
      if (!want.has(c.gi)) continue;
      c.reconnectTo = 'same';
      c.reconnectDelayMs = awayMs ?? undefined;
      c.socket.io.engine.close();
      n++;
    }
    return { dropped: n };
  },

  progress() {
    let affected = 0;
    let rejoined = 0;
    for (const c of clients) {
      if (!c.affected) continue;
      affected++;
      if (c.rejoined) rejoined++;
    }
    return { affected, rejoined };
  },

  /** Per-client facts of the outage, for the harness to judge against the publisher's record. */
  outageReport() {
    // Times are absolute (Date.now()): the harness compares them with the publisher's record.
    const at = (t) => t || null;
    const out = [];
    for (const c of clients) {
      const st = c.stream(HTTP_STREAM);
      const rec = { roomId: c.roomId, contig: st.contig, above: [...st.above], dups: c.dups - c.dupsBase, gapFilled: c.gapFilled - c.gapFilledBase };
      if (c.affected) {
        Object.assign(rec, {
          affected: true,
          dropAt: at(c.dropAt),
          connectedAt: at(c.connectedAt),
          rejoinedAt: c.rejoined ? at(c.rejoinedAt) : null,
          held: c.held,
          arrivals: c.arrivals,
          recovered: c.recovered,
          snapshot: c.snapshot,
          told: c.told || c.snapshot,
          toldWhy: c.toldWhy,
          attempts: c.attempts,
          failures: c.failures,
          rejoinError: c.rejoined ? null : c.rejoinError,
        });
      }
      out.push(rec);
    }
    return { clients: out, errors: pool.errors.slice(0, 5) };
  },

  outageStop() {
    pool.outage = null;
    return {};
  },

  pubStart,
  pubStop() {
    pubStop();
    return {};
  },
  async pubDrain({ step, timeoutMs = 10_000 }) {
    const deadline = Date.now() + timeoutMs;
    while (pub.inflight > 0 && Date.now() < deadline) await sleep(20);
    const r = pubStep(step);
    return { sent: r.sent, ok: Object.fromEntries(r.ok), errors: r.errors + (pub.inflight > 0 ? pub.inflight : 0) };
  },

  httpPubStart,
  httpPubStop() {
    httpPubStop();
    return {};
  },
  async httpPubDrain({ timeoutMs = 15_000 }) {
    const deadline = Date.now() + timeoutMs;
    while (http.inflight > 0 && Date.now() < deadline) await sleep(20);
    const rooms = {};
    for (const [id, r] of http.rooms) rooms[id] = { sent: r.sent, acked: r.acked };
    return { rooms, errors: http.errors, inflight: http.inflight };
  },

  async closeAll() {
    pubStop();
    httpPubStop();
    for (const c of clients) {
      c.closing = true;
      c.socket?.close();
    }
    clients.length = 0;
    pool.steps.clear();
    pool.outage = null;
    http.rooms.clear();
    http.errors = 0;
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

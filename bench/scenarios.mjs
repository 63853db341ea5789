// The measured scenarios. Each runs against one Session (one target's two workers and its load
// generators) and returns plain data; the harness repeats, interleaves and aggregates them.
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { ROOT } from './lib/infra.mjs';
import { judgeOutage } from './lib/judge.mjs';
import { round } from './lib/procs.mjs';
import { describePlacement, placement } from './lib/session.mjs';
import { histPct, mergeHist, sleep } from './lib/util.mjs';

const P99_LIMIT_MS = 250;
let stepIds = 0;

/** Sums the presence deliveries the generators counted since their last reset. */
const presenceTotal = (p) => p.joined + p.left + p.batches;

const DONE = Symbol('done');

/**
 * Polls `read` until it returns DONE or stops changing for `quietMs` (bounded); returns
 * { value, lastChangeMs, timedOut }.
 */
async function quiesce(read, quietMs, maxMs) {
  const t0 = performance.now();
  let value = await read();
  let changedAt = performance.now();
  while (performance.now() - t0 < maxMs && value !== DONE) {
    await sleep(Math.min(250, quietMs));
    const v = await read();
    if (v !== value) {
      value = v;
      changedAt = performance.now();
    } else if (performance.now() - changedAt >= quietMs) break;
  }
  return { value, lastChangeMs: changedAt - t0, timedOut: performance.now() - t0 >= maxMs };
}

/**
 * Waits until the workers and the generators are idle (each group under `maxPct` of one core over
 * `windowMs`), at most `maxMs`: the work a phase leaves behind (garbage collection of a mass join,
 * jobs it scheduled) is not billed to the next phase's measurements. The same rule for every target.
 */
async function settleCpu(s, { maxPct = 10, windowMs = 1000, maxMs = 15_000 } = {}) {
  const t0 = performance.now();
  let last = null;
  while (performance.now() - t0 < maxMs) {
    const m = await s.meter().begin();
    await sleep(windowMs);
    const c = await m.end();
    const workers = s.workers.reduce((a, w) => a + (c.perProcPct[w.key] ?? 0), 0);
    last = { workersPct: round(workers, 1), generatorsPct: c.generatorsPct };
    if (workers < maxPct && c.generatorsPct < maxPct) return { ms: round(performance.now() - t0), ...last, timedOut: false };
  }
  return { ms: round(performance.now() - t0), ...last, timedOut: true };
}

/** Per-operation figures from a meter window. */
function costPer(cost, ops, kind) {
  if (!ops) return {};
  const us = (sec) => round((sec * 1e6) / ops, 1);
  return {
    [`workerCpuUsPer${kind}`]: us(cost.cpuSec.worker),
    [`redisCpuUsPer${kind}`]: us(cost.cpuSec.redisInfo),
    [`redisCmdsPer${kind}`]: round(cost.commands / ops, 2),
  };
}

function saturation(ctx, cost, where) {
  // Generators share the cores with the servers: judged on their total, and on any single one.
  const bound = cost.generatorMaxPct >= 90 || cost.generatorsPct >= 90 * ctx.cores * 0.5;
  if (bound) ctx.warn(`${where}: load generators used ${cost.generatorsPct}% of a core in total (max one ${cost.generatorMaxPct}%) of ${ctx.cores} cores: figures may be generator-bound`);
  return bound;
}

// ------------------------------------------------------------------ fan-out steps
/**
 * Publishes at `ratePerSec` (total, spread evenly over every publishing member) for `durationMs`,
 * then waits until every delivery arrived or deliveries stop. Deliveries and latency are counted
 * by the receivers; publishes (acked) by the publishers; expected = Σ acked × members of the room.
 */
async function fanStep(ctx, s, { ratePerSec, durationMs, members, label }) {
  const step = ++stepIds;
  const totalPubs = s.publishers.reduce((a, b) => a + b, 0);
  if (!totalPubs) throw new Error(`${label}: no publishing member is connected`);
  const meter = await s.meter().begin();
  const t0 = performance.now();
  await Promise.all(s.gens.map((g, i) => (s.publishers[i] ? g.call('pubStart', { step, ratePerSec: (ratePerSec * s.publishers[i]) / totalPubs }) : null)));
  await sleep(durationMs);
  await Promise.all(s.gens.map((g) => g.call('pubStop')));
  const pubSec = (performance.now() - t0) / 1000;
  const drains = await Promise.all(s.gens.map((g) => g.call('pubDrain', { step })));
  let published = 0;
  let errors = 0;
  let expected = 0;
  for (const d of drains) {
    errors += d.errors;
    for (const [room, n] of Object.entries(d.ok)) {
      published += n;
      expected += n * (members[room] ?? 0);
    }
  }
  const count = async () => (await s.gensCall('stepCount', { step })).reduce((a, r) => a + r.delivered, 0);
  const q = await quiesce(async () => {
    const v = await count();
    return v >= expected ? DONE : v;
  }, 500, 15_000);
  const cost = await meter.end(s.bgCmdsPerSec);
  const stats = await s.gensCall('stepStats', { step });
  const hist = {};
  let delivered = 0;
  for (const st of stats) {
    delivered += st.delivered;
    mergeHist(hist, st.hist);
  }
  const lost = Math.max(0, expected - delivered);
  const achieved = published / pubSec;
  const out = {
    ratePerSec: round(ratePerSec, 2),
    achievedPerSec: round(achieved, 1),
    published,
    publishErrors: errors,
    expected,
    delivered,
    deliveredPerSec: round(delivered / pubSec),
    lost,
    p50Ms: histPct(hist, 50),
    p99Ms: histPct(hist, 99),
    maxMs: histPct(hist, 100),
    drainTimedOut: q.timedOut,
    ...costPer(cost, delivered, 'Delivery'),
    ...costPer(cost, published, 'Publish'),
    cost,
  };
  out.generatorBound = saturation(ctx, cost, `${label} @${out.ratePerSec}/s`);
  out.pass = out.p99Ms !== null && out.p99Ms < P99_LIMIT_MS && lost === 0 && errors === 0 && achieved >= 0.9 * ratePerSec;
  ctx.log(
    `  ${label} ${s.target} @${out.ratePerSec}/s: ${out.deliveredPerSec} deliveries/s, p50 ${out.p50Ms} p99 ${out.p99Ms} ms, lost ${lost}, errors ${errors}, ` +
      `${out.workerCpuUsPerDelivery ?? '—'} µs CPU/delivery, ${out.redisCmdsPerPublish ?? '—'} cmds/publish${out.pass ? '' : '  → over the limit'}`,
  );
  return out;
}

/**
 * Capacity: the highest total publish rate whose step passes (p99 < 250 ms, nothing lost, no
 * publish errors, ≥ 90 % of the rate achieved), bracketed by doubling (or by ±20 % around the
 * previous repeat's figure) and then bisected until the first failing rate is within 1.2× of the
 * last passing one, i.e. the capacity is known to ±10 %.
 */
async function capacitySearch(ctx, s, { members, start, cap, prior, label }) {
  const S = ctx.sizes;
  const probes = [];
  let lo = 0;
  let hi = Infinity;
  const probe = async (rate) => {
    const r = await fanStep(ctx, s, { ratePerSec: rate, durationMs: S.fanoutStepMs, members, label });
    probes.push(r);
    await sleep(S.stepGapMs);
    return r.pass;
  };
  const up = prior ? 1.2 : 2;
  let rate = Math.min(cap, prior || start);
  const minRate = start / 64;
  while (probes.length < S.capacityProbes) {
    if (await probe(rate)) {
      lo = Math.max(lo, rate);
      if (hi < Infinity || rate >= cap) break;
      rate = Math.min(cap, rate * up);
    } else {
      hi = Math.min(hi, rate);
      if (lo > 0) break;
      rate /= up;
      if (rate < minRate) break;
    }
  }
  const RESOLVED = 1.2 + 1e-9; // ±10 % around the midpoint; the epsilon absorbs float rounding
  while (lo > 0 && hi < Infinity && hi / lo > RESOLVED && probes.length < S.capacityProbes) {
    const mid = Math.sqrt(lo * hi);
    if (await probe(mid)) lo = mid;
    else hi = mid;
  }
  const best = probes.filter((p) => p.pass && p.ratePerSec === round(lo, 2)).at(-1) ?? null;
  return {
    capacityPerSec: round(lo, 2),
    firstFailPerSec: hi < Infinity ? round(hi, 2) : null,
    resolved: lo > 0 && hi < Infinity && hi / lo <= RESOLVED,
    capped: lo >= cap,
    capPerSec: round(cap, 2),
    capacityDeliveredPerSec: best?.deliveredPerSec ?? 0,
    p99AtCapacityMs: best?.p99Ms ?? null,
    probes,
  };
}

/** The highest total publish rate the target's per-socket publish limit allows the publishers. */
function publishCap(ctx, s) {
  const limit = s.target === 'tether' ? Number(s.env.PUBLISH_RATE_PER_SEC ?? ctx.tetherDefaults.PUBLISH_RATE_PER_SEC) : Infinity;
  const pubs = s.publishers.reduce((a, b) => a + b, 0);
  return Math.min(ctx.sizes.capacityMax, 0.9 * limit * pubs);
}

function membersOf(placed) {
  return Object.fromEntries(Object.entries(placed).map(([room, [a, b]]) => [room, a + b]));
}

// ------------------------------------------------------------------ scenario: small rooms
/**
 * Connect + join of many clients into small rooms (cost per connect+join, idle memory per
 * connection), a reconnect + rejoin wave (cost per rejoin), then publishing at fixed high rates.
 */
export async function smallRooms(ctx, s) {
  const S = ctx.sizes;
  // Warm-up: a few clients come and go first, so lazy initialisation (JIT, pools, script loads)
  // is not billed to the measured ones.
  if (S.warmup) {
    const warm = await s.createRooms(4);
    await s.connect(placement(warm, 5, 1), 20);
    await s.closeClients();
  }
  const rooms = await s.createRooms(S.smallRooms);
  await sleep(S.settleMs);
  const bg = await s.measureBackground(S.backgroundMs);
  const base = await Promise.all(s.workers.map((w) => w.probe()));
  const baseRedis = await ctx.redis.usedMemory();

  // Connect + join.
  await s.gensCall('presenceReset');
  let meter = await s.meter().begin();
  const c = await s.connect(placement(rooms, S.smallMembers, 2));
  const connectCost = await meter.end(bg);
  const connect = {
    connections: c.ok,
    failed: c.failed,
    seconds: round(c.ms / 1000, 2),
    perSec: round(c.ok / (c.ms / 1000)),
    ...costPer(connectCost, c.ok, 'Connect'),
    generatorBound: saturation(ctx, connectCost, `connect ${s.target}`),
    cost: connectCost,
  };
  ctx.log(`  small rooms ${s.target}: ${c.ok} connect+join in ${connect.seconds} s (${connect.perSec}/s), ${connect.workerCpuUsPerConnect} µs worker CPU and ${connect.redisCmdsPerConnect} Redis commands each`);

  // Idle memory after a full GC.
  await sleep(S.settleMs);
  const now = await Promise.all(s.workers.map((w) => w.probe()));
  const redisMem = await ctx.redis.usedMemory();
  const heap = now.reduce((a, m) => a + m.heapUsed, 0) - base.reduce((a, m) => a + m.heapUsed, 0);
  const rss = now.reduce((a, m) => a + m.rss, 0) - base.reduce((a, m) => a + m.rss, 0);
  const idle = {
    connections: c.ok,
    heapPerConnKB: round(Math.max(0, heap) / c.ok / 1024, 2),
    rssPerConnKB: round(Math.max(0, rss) / c.ok / 1024, 2),
    redisPerConnKB: round(Math.max(0, redisMem - baseRedis) / c.ok / 1024, 2),
  };
  idle.heapPlusRedisPerConnKB = round(idle.heapPerConnKB + idle.redisPerConnKB, 2);

  // Reconnect + rejoin: non-publishing members drop their transport and come back to the same
  // worker within the reconnect jitter; the window runs until all are back plus the longest
  // presence-batching window of any target, so batched announcements are billed too.
  const all = placement(rooms, S.smallMembers, 2);
  const dropSet = all.filter((x) => !x.publisher && (x.gi * 7919) % 100 < S.rejoinFraction * 100).map((x) => x.gi);
  await s.gensCall('outageStart', { jitterMs: S.jitterMs });
  await s.gensCall('presenceReset');
  meter = await s.meter().begin();
  const t0 = Date.now();
  const dropped = (await s.gensCall('drop', { gis: dropSet, awayMs: null })).reduce((a, r) => a + r.dropped, 0);
  let back = { affected: 0, rejoined: 0 };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await sleep(100);
    const ps = await s.gensCall('progress');
    back = ps.reduce((a, p) => ({ affected: a.affected + p.affected, rejoined: a.rejoined + p.rejoined }), { affected: 0, rejoined: 0 });
    if (back.affected >= dropped && back.rejoined >= back.affected) break;
  }
  const allBackMs = Date.now() - t0;
  await sleep(ctx.batchWindowMs + 500);
  const rejoinCost = await meter.end(bg);
  const rp = await s.presence();
  await s.gensCall('outageStop');
  const rejoin = {
    dropped,
    rejoined: back.rejoined,
    allBackMs,
    presenceDeliveries: presenceTotal(rp),
    presenceDeliveriesPerRejoin: back.rejoined ? round(presenceTotal(rp) / back.rejoined, 2) : null,
    ...costPer(rejoinCost, back.rejoined, 'Rejoin'),
    cost: rejoinCost,
  };
  ctx.log(`  rejoin ${s.target}: ${back.rejoined}/${dropped} back in ${allBackMs} ms, ${rejoin.workerCpuUsPerRejoin} µs worker CPU, ${rejoin.redisCmdsPerRejoin} Redis commands, ${rejoin.presenceDeliveriesPerRejoin} presence deliveries per rejoin`);

  // Fixed high publish rates into the small rooms.
  const members = membersOf(c.placed);
  const steps = [];
  for (const perRoom of S.smallRates) {
    steps.push({ perRoom, ...(await fanStep(ctx, s, { ratePerSec: perRoom * rooms.length, durationMs: S.smallStepMs, members, label: 'small rooms' })) });
    await sleep(S.stepGapMs);
  }
  return { placement: describePlacement(c.placed, 2), connect, idle, rejoin, steps };
}

// ------------------------------------------------------------------ scenario: large-room fan-out
/**
 * First joins of many members into few rooms (the mass join: deliveries of join announcements),
 * then publishing at equal fixed rates (latency and costs at the same load for every target),
 * then the capacity search.
 */
export async function fanout(ctx, s, prior) {
  const S = ctx.sizes;
  const rooms = await s.createRooms(S.fanoutRooms);
  await sleep(S.settleMs);
  const bg = await s.measureBackground(S.backgroundMs);

  // Mass join: every join into a room that fills up to `fanoutMembers`.
  await s.gensCall('presenceReset');
  const meter = await s.meter().begin();
  const t0 = performance.now();
  const c = await s.connect(placement(rooms, S.fanoutMembers, S.fanoutPublishers));
  const joinedMs = performance.now() - t0;
  // Announcements may be batched: wait until nothing arrives for longer than any target's window.
  const q = await quiesce(async () => presenceTotal(await s.presence()), ctx.batchWindowMs + 500, 120_000);
  const joinCost = await meter.end(bg);
  const p = await s.presence();
  const members = membersOf(c.placed);
  const naive = Object.values(members).reduce((a, m) => a + (m * (m - 1)) / 2, 0);
  const massJoin = {
    joins: c.ok,
    rooms: rooms.length,
    failed: c.failed,
    allJoinedMs: round(joinedMs),
    quietAfterMs: round(q.lastChangeMs + joinedMs),
    joinDeliveries: presenceTotal(p),
    joinedMessages: p.joined,
    presenceBatches: p.batches,
    oneBroadcastPerJoinDeliveries: naive,
    ...costPer(joinCost, c.ok, 'Join'),
    cost: joinCost,
  };
  ctx.log(`  mass join ${s.target}: ${c.ok} joins into ${rooms.length} rooms in ${massJoin.allJoinedMs} ms, ${massJoin.joinDeliveries} join deliveries (one broadcast per join: ${naive}), quiet after ${massJoin.quietAfterMs} ms`);
  await sleep(S.settleMs);
  // What the mass join left behind (its garbage, above all) must not be billed to the first rate.
  massJoin.settle = await settleCpu(s);
  if (massJoin.settle.timedOut) ctx.warn(`${s.target} fan-out: workers or generators still busy ${massJoin.settle.ms} ms after the mass join (workers ${massJoin.settle.workersPct} %, generators ${massJoin.settle.generatorsPct} % of a core)`);

  const equal = [];
  for (const perRoom of S.fanoutRates) {
    equal.push({ perRoom, ...(await fanStep(ctx, s, { ratePerSec: perRoom * rooms.length, durationMs: S.fanoutStepMs, members, label: 'fan-out' })) });
    await sleep(S.stepGapMs);
  }
  const sum = (k) => equal.reduce((a, st) => a + (st[k] ?? 0), 0);
  const delivered = sum('delivered');
  const equalTotals = {
    delivered,
    published: sum('published'),
    workerCpuUsPerDelivery: delivered ? round((equal.reduce((a, st) => a + st.cost.cpuSec.worker, 0) * 1e6) / delivered, 1) : null,
    workerCpuUsPerPublish: sum('published') ? round((equal.reduce((a, st) => a + st.cost.cpuSec.worker, 0) * 1e6) / sum('published'), 1) : null,
  };
  const capacity = await capacitySearch(ctx, s, { members, start: S.capacityStart * rooms.length, cap: publishCap(ctx, s), prior, label: 'capacity' });
  ctx.log(`  capacity ${s.target}: ${capacity.capacityPerSec} publishes/s (${capacity.capacityDeliveredPerSec} deliveries/s), first failing ${capacity.firstFailPerSec ?? '—'}${capacity.capped ? ' (at the cap)' : ''}`);
  return { placement: describePlacement(c.placed, S.fanoutPublishers), massJoin, equal, equalTotals, capacity };
}

// ------------------------------------------------------------------ outages
let keysModule;
async function nodesKey(prefix) {
  keysModule ??= await import(pathToFileURL(join(ROOT, 'dist/redis/keys.js')).href).catch(() => null);
  return keysModule?.Keys ? new keysModule.Keys(prefix).nodes() : null;
}

/** Publishes over HTTP to every room, alternating workers, from the publisher process. */
async function startHttpPublisher(s, rooms, perRoom) {
  await s.startPublisher();
  await s.publisher.call('httpPubStart', { urls: s.urls, rooms, ratePerSec: perRoom * rooms.length, token: s.publishToken() });
}

async function waitBack(s, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let back = { affected: 0, rejoined: 0 };
  while (Date.now() < deadline) {
    await sleep(100);
    const ps = await s.gensCall('progress');
    back = ps.reduce((a, p) => ({ affected: a.affected + p.affected, rejoined: a.rejoined + p.rejoined }), { affected: 0, rejoined: 0 });
    if (back.affected >= expected && back.rejoined >= back.affected) return { ...back, timedOut: false };
  }
  return { ...back, timedOut: true };
}

async function collectOutage(ctx, s, t0, endAt) {
  await s.publisher.call('httpPubStop');
  const pub = await s.publisher.call('httpPubDrain', { timeoutMs: 15_000 });
  await sleep(ctx.sizes.settleMs); // the last publishes reach every receiver
  const reports = await s.gensCall('outageReport', {}, 120_000);
  const recs = reports.flatMap((r) => r.clients);
  return judgeOutage(pub, recs, t0, endAt);
}

/**
 * A worker dies (SIGKILL) or drains (SIGTERM) while events keep being published to every room;
 * its clients reconnect to the other worker after a uniform jitter, and the worker is restarted.
 * The session decides its NODE_ID: unset (the production default: a new id per process, so the
 * reaper must clean up after the dead one) or fixed per worker (what `npm start` does when it
 * respawns a worker).
 */
export async function storm(ctx, s, { signal }) {
  const S = ctx.sizes;
  const rooms = await s.createRooms(S.stormRooms);
  const c = await s.connect(placement(rooms, Math.round(S.stormClients / S.stormRooms), 0));
  const onW0 = Object.values(c.placed).reduce((a, [w0]) => a + w0, 0);
  await startHttpPublisher(s, rooms, S.stormRatePerRoom);
  await sleep(S.settleMs * 1.5);
  const key = s.target === 'tether' ? await nodesKey(s.workers[0].keyPrefix) : null;
  // The node set holds process instances (`<NODE_ID>~<random>`), not NODE_IDs: watch the killed
  // worker's own instance, found before the kill (a respawn under the same NODE_ID is another one).
  const deadNode = c.nodeIds[0] ?? null;
  const deadId = key && deadNode ? ((await ctx.redis.own1('smembers', (r) => r.sMembers(key))).find((m) => m.startsWith(`${deadNode}~`)) ?? null) : null;
  await s.gensCall('outageStart', { jitterMs: S.jitterMs });
  await s.gensCall('presenceReset');
  const meter = await s.meter().begin();
  const t0 = Date.now();
  const restart = (async () => {
    await s.workers[0].stop(signal, 60_000);
    const downMs = Date.now() - t0;
    // The session decided the NODE_ID: unset (each process picks a new one) or fixed per worker.
    const restartMs = await s.workers[0].start();
    return { downMs, restartMs: round(restartMs) };
  })();
  // The reaper's work shows as the dead node leaving the node set (Tether only).
  let reaperActedMs = null;
  const reaperWatch = (async () => {
    if (!key || !deadId) return;
    while (Date.now() - t0 < S.stormObserveMs) {
      const still = await ctx.redis.own1('sismember', (r) => r.sIsMember(key, deadId)).catch(() => 1);
      if (!still) {
        reaperActedMs = Date.now() - t0;
        return;
      }
      await sleep(250);
    }
  })();
  const back = await waitBack(s, onW0, S.stormTimeoutMs);
  if (back.timedOut) ctx.warn(`${s.target} storm: ${back.rejoined}/${back.affected} of ${onW0} back after ${S.stormTimeoutMs} ms`);
  // Observe for the same time for every target: long enough for Tether's reaper to act.
  while (Date.now() - t0 < S.stormObserveMs) await sleep(100);
  const endAt = Date.now();
  const { downMs, restartMs } = await restart;
  await reaperWatch;
  const p = await s.presence();
  const r = await collectOutage(ctx, s, t0, endAt);
  const cost = await meter.end(s.bgCmdsPerSec);
  await s.gensCall('outageStop');
  const out = {
    clients: c.ok,
    rooms: rooms.length,
    expectedAffected: onW0,
    publishPerSec: S.stormRatePerRoom * rooms.length,
    ...r,
    presenceDeliveries: presenceTotal(p),
    presenceReplayed: p.replayed,
    workerDownMs: downMs,
    workerRestartMs: restartMs,
    deadNodeId: deadId,
    reaperActedMs,
    observedMs: endAt - t0,
    redisCpuSec: cost.cpuSec.redisInfo,
    redisCommands: cost.commands,
    redisCommandsRaw: cost.commandsRaw,
    survivorCpuSec: cost.perProcPct[s.workers[1].key] !== undefined ? round((cost.perProcPct[s.workers[1].key] * cost.wallSec) / 100, 2) : null,
    placement: describePlacement(c.placed, 0),
    cost,
  };
  ctx.log(
    `  storm ${s.target}: ${r.affected} affected, 100% back in ${r.timeTo100RejoinedMs ?? '—'} ms, 100% with every missed event in ${r.timeTo100CompleteMs ?? '—'} ms, ` +
      `missed ${r.missedEvents} (publisher-counted), recovered ${r.recoveredPct ?? '—'}%, presence ${out.presenceDeliveries}, reaper ${reaperActedMs ?? '—'} ms` +
      (r.toldClients > 0 ? `; told ${r.toldClients}: ${JSON.stringify(r.toldReasons)}` : '') +
      (Object.keys(r.attemptFailures).length ? `; failed attempts ${JSON.stringify(r.attemptFailures)}` : ''),
  );
  return out;
}

/** Clients lose their transport for `awayMs` and come back to the same worker (no server fault). */
export async function catchup(ctx, s, cases) {
  const S = ctx.sizes;
  const rooms = await s.createRooms(S.catchupRooms);
  const specs = placement(rooms, Math.round(S.catchupClients / S.catchupRooms), 0);
  const c = await s.connect(specs);
  await startHttpPublisher(s, rooms, S.catchupRatePerRoom);
  await sleep(S.settleMs);
  const out = { placement: describePlacement(c.placed, 0), cases: {} };
  let fromMs = 0;
  for (let i = 0; i < cases.length; i++) {
    const { name, awayMs } = cases[i];
    const gis = specs.filter((x) => x.gi % 2 === i % 2).map((x) => x.gi);
    await s.gensCall('outageStart', {});
    const meter = await s.meter().begin();
    const t0 = Date.now();
    const dropped = (await s.gensCall('drop', { gis, awayMs })).reduce((a, r) => a + r.dropped, 0);
    const back = await waitBack(s, dropped, awayMs + 30_000);
    const endAt = Date.now();
    const cost = await meter.end(s.bgCmdsPerSec);
    await sleep(S.settleMs);
    // The publisher keeps going: collect its record so far without stopping it for the next case.
    const pub = await s.publisher.call('httpPubDrain', { timeoutMs: 1 });
    await sleep(S.settleMs);
    const reports = await s.gensCall('outageReport', {}, 120_000);
    // Each case judges only the events sent since the previous one ended: a loss in an earlier
    // case is not billed again.
    const r = judgeOutage(pub, reports.flatMap((x) => x.clients), t0, endAt, fromMs);
    fromMs = Date.now();
    await s.gensCall('outageStop');
    out.cases[name] = { awayMs, dropped, timedOut: back.timedOut, ...r, correct: r.silentLossClients === 0 && r.lostUnaffected === 0, cost };
    ctx.log(`  catch-up ${name} ${s.target}: ${dropped} away ${awayMs} ms, missed ${r.missedEvents}, recovered ${r.recoveredPct ?? '—'}%, told ${r.toldClients}, silent loss ${r.silentLossClients}, dups ${r.duplicates}`);
  }
  await s.publisher.call('httpPubStop');
  return out;
}

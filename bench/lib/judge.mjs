// Judges an outage (worker kill, drain, dropped transports) from two independent records: the
// HTTP publisher's (every event it sent per room, its send time and whether it was acknowledged)
// and each receiver's (what it held when its transport dropped, when it was back in its room, what
// it held at the end and when each event after the drop arrived). "Missed" events are counted from
// the publisher's record, never from what receivers got.
import { pct } from './util.mjs';
import { round } from './procs.mjs';

/**
 * @param pub   { rooms: { roomId: { sent: ms[], acked: (0|1)[] } } } — event n is index n-1
 * @param recs  per-client records from the generators (outageReport)
 * @param t0    the outage's start (ms): the kill, the SIGTERM or the drop
 * @param endAt when observation ended (ms): clients not back by then count as never back
 * @param fromMs events sent before this (ms) belong to an earlier outage and are not judged
 */
export function judgeOutage(pub, recs, t0, endAt, fromMs = 0) {
  const affected = [];
  let lostUnaffected = 0;
  let dups = 0;
  let gapFilled = 0;
  for (const c of recs) {
    dups += c.dups ?? 0;
    gapFilled += c.gapFilled ?? 0;
    const room = pub.rooms[c.roomId] ?? { sent: [], acked: [] };
    const above = new Set(c.above);
    const has = (n) => n <= c.contig || above.has(n);
    if (!c.affected) {
      for (let n = 1; n <= room.sent.length; n++) if (room.acked[n - 1] && room.sent[n - 1] >= fromMs && !has(n)) lostUnaffected++;
      continue;
    }
    const heldAbove = new Set(c.held?.above ?? []);
    const held = (n) => n <= (c.held?.contig ?? 0) || heldAbove.has(n);
    const arrived = new Map();
    for (let i = 0; i < c.arrivals.length; i += 2) if (!arrived.has(c.arrivals[i])) arrived.set(c.arrivals[i], c.arrivals[i + 1]);
    const back = c.rejoinedAt ?? endAt;
    let missed = 0;
    let recovered = 0;
    let lost = 0;
    let lastMissedArrival = 0;
    for (let n = 1; n <= room.sent.length; n++) {
      if (!room.acked[n - 1] || room.sent[n - 1] < fromMs) continue;
      const got = has(n);
      if (!got) lost++;
      if (held(n) || room.sent[n - 1] > back) continue;
      missed++;
      if (got) {
        recovered++;
        lastMissedArrival = Math.max(lastMissedArrival, arrived.get(n) ?? 0);
      }
    }
    const complete = c.rejoinedAt !== null && lost === 0;
    affected.push({
      rejoinedMs: c.rejoinedAt !== null ? c.rejoinedAt - t0 : null,
      completeMs: complete ? Math.max(c.rejoinedAt, lastMissedArrival) - t0 : null,
      reconnectMs: c.connectedAt ? c.connectedAt - c.dropAt : null,
      attempts: c.attempts ?? 0,
      failures: c.failures ?? [],
      rejoinAckMs: c.rejoinedAt !== null && c.connectedAt ? c.rejoinedAt - c.connectedAt : null,
      missed,
      recovered,
      lost,
      told: Boolean(c.told),
      toldWhy: c.toldWhy ?? null,
      snapshot: Boolean(c.snapshot),
      recoveredFlag: Boolean(c.recovered),
      rejoinError: c.rejoinError ?? null,
    });
  }
  const n = affected.length;
  const sorted = (k) =>
    affected
      .map((a) => a[k])
      .filter((x) => x !== null)
      .sort((a, b) => a - b);
  // Time until p % of the affected clients got there; null when fewer than that ever did.
  const until = (k, p) => {
    const v = sorted(k);
    const need = Math.ceil((p / 100) * n);
    return n && v.length >= need ? v[need - 1] : null;
  };
  const sum = (k) => affected.reduce((s, a) => s + a[k], 0);
  const missed = sum('missed');
  const recovered = sum('recovered');
  const rejoined = affected.filter((a) => a.rejoinedMs !== null).length;
  const complete = affected.filter((a) => a.completeMs !== null).length;
  let published = 0;
  let publishFailed = 0;
  for (const r of Object.values(pub.rooms)) {
    r.acked.forEach((a, i) => {
      if (r.sent[i] < fromMs) return;
      if (a) published++;
      else publishFailed++;
    });
  }
  return {
    affected: n,
    rejoined,
    rejoinedPct: n ? round((100 * rejoined) / n) : null,
    timeTo99RejoinedMs: until('rejoinedMs', 99),
    timeTo100RejoinedMs: until('rejoinedMs', 100),
    missedEvents: missed,
    recoveredEvents: recovered,
    // No missed events means the outage tested nothing: reported as null, never as 100 %.
    recoveredPct: missed ? round((100 * recovered) / missed, 2) : null,
    complete,
    completePct: n ? round((100 * complete) / n) : null,
    timeTo99CompleteMs: until('completeMs', 99),
    timeTo100CompleteMs: until('completeMs', 100),
    lostAffected: sum('lost'),
    lostUnaffected,
    silentLossClients: affected.filter((a) => a.lost > 0 && !a.told).length,
    toldClients: affected.filter((a) => a.told).length,
    // Which path told them (the first per client): room:state_snapshot, recovered: false, evicted…
    toldReasons: Object.fromEntries(
      affected.filter((a) => a.told).reduce((m, a) => m.set(a.toldWhy ?? 'unknown', (m.get(a.toldWhy ?? 'unknown') ?? 0) + 1), new Map()),
    ),
    snapshots: affected.filter((a) => a.snapshot).length,
    recoveredWithoutSnapshot: affected.filter((a) => a.recoveredFlag && !a.snapshot).length,
    duplicates: dups,
    gapFilledEvents: gapFilled,
    reconnectMsP50: pct(sorted('reconnectMs'), 50),
    // Connect attempts per affected client (a failed one: refused, or no session within the
    // generator's 10 s): more than one means the server could not take the storm at once.
    reconnectAttemptsMean: n ? round(sum('attempts') / n, 2) : null,
    reconnectAttemptsMax: n ? Math.max(...affected.map((a) => a.attempts)) : null,
    // Why attempts failed, and how long a failed attempt took (a timeout costs its full 10 s).
    attemptFailures: failureSummary(affected),
    rejoinAckMsP50: pct(sorted('rejoinAckMs'), 50),
    rejoinAckMsP99: pct(sorted('rejoinAckMs'), 99),
    neverBack: n - rejoined,
    published,
    publishFailed,
    errors: [...new Set(affected.map((a) => a.rejoinError).filter(Boolean))].slice(0, 3),
  };
}

/** Failed connect attempts by reason: how many, and the median time each took. */
function failureSummary(affected) {
  const by = new Map();
  for (const a of affected) {
    for (let i = 0; i < a.failures.length; i += 2) {
      const reason = a.failures[i];
      let e = by.get(reason);
      if (!e) by.set(reason, (e = []));
      e.push(a.failures[i + 1]);
    }
  }
  return Object.fromEntries(
    [...by].map(([reason, ms]) => {
      ms.sort((x, y) => x - y);
      return [reason, { attempts: ms.length, msP50: pct(ms, 50) }];
    }),
  );
}

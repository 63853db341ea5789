// The issue's targets, evaluated from one run's results (medians over repeats, Tether against the
// plain baseline). Reported, never asserted. Every target can fail: a missing or zero figure on
// either side, a size below the one the target is defined at, or conditions not met (overrides,
// rooms not spanning both workers) make it MISS, with the reason.
import { median } from './lib/util.mjs';

const fmtN = (x) => (x === null || x === undefined ? '—' : x === Infinity ? '∞' : Number.isInteger(x) ? String(x) : x.toFixed(x >= 100 ? 0 : 2));

function okRuns(results, scenario, target) {
  return (results.runs?.[scenario]?.[target] ?? []).filter((r) => !r.error);
}

/** Median over the target's successful runs of `get(run)`; null when no run has the figure. */
function med(results, scenario, target, get) {
  const v = okRuns(results, scenario, target).map((r) => {
    try {
      return get(r);
    } catch {
      return null;
    }
  });
  return median(v.filter((x) => x !== null && x !== undefined));
}

function spans(results, scenario) {
  const runs = ['tether', 'plain'].flatMap((t) => okRuns(results, scenario, t));
  return runs.length > 0 && runs.every((r) => r.placement && r.placement.roomsSpanningBothWorkers === r.placement.rooms);
}

export function evaluateTargets(results) {
  const out = [];
  const S = results.meta.sizes;
  const quick = results.meta.quick;
  /**
   * `better`: 'higher' (tether ≥ k × plain) or 'lower' (tether ≤ k × plain).
   * `unmet`: conditions the figure does not satisfy (then MISS whatever the ratio).
   */
  const add = ({ id, name, tether, plain, k, better, unit, unmet = [] }) => {
    const have = typeof tether === 'number' && typeof plain === 'number';
    let ratio = null;
    if (have && plain > 0 && Number.isFinite(plain)) ratio = tether / plain;
    else if (have && plain === Infinity && Number.isFinite(tether)) ratio = 0;
    const why = [...unmet];
    if (!have) why.push('no figure for ' + [typeof tether !== 'number' && 'tether', typeof plain !== 'number' && 'plain'].filter(Boolean).join(' and '));
    else if (!(plain > 0)) why.push('plain measured 0: nothing to compare with');
    else if (!Number.isFinite(tether) && better === 'lower') why.push('tether never got there');
    if (quick) why.push('--quick: structure only');
    const meets = ratio !== null && (better === 'higher' ? ratio >= k : ratio <= k);
    out.push({
      id,
      name,
      threshold: `${better === 'higher' ? '≥' : '≤'} ${k}× plain`,
      tether: tether ?? null,
      plain: plain ?? null,
      unit,
      ratio: ratio === null ? null : Math.round(ratio * 1000) / 1000,
      pass: meets && why.length === 0,
      ...(why.length ? { note: why.join('; ') } : {}),
      value: `${fmtN(tether)} vs ${fmtN(plain)} ${unit} → ${ratio === null ? '—' : `${fmtN(Math.round(ratio * 1000) / 1000)}×`}`,
    });
  };
  const has = (sc) => results.runs?.[sc]?.tether && results.runs?.[sc]?.plain;

  if (has('fanout')) {
    const unmet = spans(results, 'fanout') ? [] : ['not every room spans both workers'];
    add({
      id: 'fanout-capacity',
      name: 'fan-out capacity at p99 < 250 ms, rooms spanning workers',
      tether: med(results, 'fanout', 'tether', (r) => r.capacity.capacityPerSec),
      plain: med(results, 'fanout', 'plain', (r) => r.capacity.capacityPerSec),
      k: 1.0,
      better: 'higher',
      unit: 'publishes/s',
      unmet,
    });
    add({
      id: 'cpu-per-delivery',
      name: 'worker CPU µs per delivery at equal rates',
      tether: med(results, 'fanout', 'tether', (r) => r.equalTotals.workerCpuUsPerDelivery),
      plain: med(results, 'fanout', 'plain', (r) => r.equalTotals.workerCpuUsPerDelivery),
      k: 1.0,
      better: 'lower',
      unit: 'µs',
      unmet,
    });
    // p99 must hold at every equal rate: the worst ratio is the figure.
    const rates = S.fanoutRates;
    let worst = null;
    const parts = [];
    rates.forEach((rate, i) => {
      const t = med(results, 'fanout', 'tether', (r) => r.equal[i].p99Ms);
      const p = med(results, 'fanout', 'plain', (r) => r.equal[i].p99Ms);
      parts.push(`${rate}/s per room: ${fmtN(t)} vs ${fmtN(p)} ms`);
      const ratio = typeof t === 'number' && typeof p === 'number' && p > 0 ? t / p : null;
      if (ratio !== null && (worst === null || ratio > worst.ratio)) worst = { ratio, t, p };
    });
    add({
      id: 'p99-equal-rates',
      name: `p99 publish→receive at equal rates (worst of ${rates.join(', ')} msgs/s per room)`,
      tether: worst?.t ?? null,
      plain: worst?.p ?? null,
      k: 1.5,
      better: 'lower',
      unit: 'ms',
      unmet,
    });
    out.at(-1).detail = parts.join('; ');
    const joins = med(results, 'fanout', 'tether', (r) => r.massJoin.joins);
    add({
      id: 'mass-join',
      name: 'deliveries of join announcements for 5,000 first joins into 10 rooms',
      tether: med(results, 'fanout', 'tether', (r) => r.massJoin.joinDeliveries),
      plain: med(results, 'fanout', 'plain', (r) => r.massJoin.joinDeliveries),
      k: 0.02,
      better: 'lower',
      unit: 'deliveries',
      unmet: joins >= 5000 && S.fanoutRooms === 10 ? [] : [`reduced size: ${fmtN(joins)} joins into ${S.fanoutRooms} rooms`],
    });
  }
  if (has('small-rooms')) {
    const conns = med(results, 'small-rooms', 'tether', (r) => r.connect.connections);
    const size = conns >= 5000 ? [] : [`reduced size: ${fmtN(conns)} connections (< 5,000)`];
    add({
      id: 'cpu-per-connect',
      name: 'worker CPU per connect+join',
      tether: med(results, 'small-rooms', 'tether', (r) => r.connect.workerCpuUsPerConnect),
      plain: med(results, 'small-rooms', 'plain', (r) => r.connect.workerCpuUsPerConnect),
      k: 1.2,
      better: 'lower',
      unit: 'µs',
      unmet: size,
    });
    add({
      id: 'connect-rate',
      name: 'connect+join rate',
      tether: med(results, 'small-rooms', 'tether', (r) => r.connect.perSec),
      plain: med(results, 'small-rooms', 'plain', (r) => r.connect.perSec),
      k: 1.0,
      better: 'higher',
      unit: '/s',
      unmet: size,
    });
    add({
      id: 'idle-memory',
      name: 'idle heap (after GC) + Redis memory per connection',
      tether: med(results, 'small-rooms', 'tether', (r) => r.idle.heapPlusRedisPerConnKB),
      plain: med(results, 'small-rooms', 'plain', (r) => r.idle.heapPlusRedisPerConnKB),
      k: 1.0,
      better: 'lower',
      unit: 'KB',
      unmet: size,
    });
  }
  if (has('storm-kill')) {
    const truns = okRuns(results, 'storm-kill', 'tether');
    // A run counts only if every affected client came back with every event the publisher says it
    // missed, and there were missed events at all; otherwise its time is ∞ (never).
    const tTime = median(truns.map((r) => (r.missedEvents > 0 && r.recoveredPct === 100 && r.completePct === 100 && r.timeTo100CompleteMs !== null ? r.timeTo100CompleteMs : Infinity)));
    const pTime = median(okRuns(results, 'storm-kill', 'plain').map((r) => r.timeTo100RejoinedMs ?? Infinity));
    const unmet = [];
    const clients = median(truns.map((r) => r.clients));
    if (!(clients >= 5000)) unmet.push(`reduced size: ${fmtN(clients)} clients (< 5,000)`);
    const tetherEnv = truns.map((r) => Object.keys(r.env ?? {})).flat();
    if (tetherEnv.length) unmet.push(`not at production defaults (${[...new Set(tetherEnv)].join(', ')} overridden)`);
    if (truns.some((r) => r.missedEvents === 0)) unmet.push('a storm with no missed events tests nothing');
    add({
      id: 'storm-recovery',
      name: 'storm (SIGKILL, fresh NODE_ID): Tether 100 % back with every missed event vs plain 100 % rejoined',
      tether: tTime,
      plain: pTime,
      k: 0.8,
      better: 'lower',
      unit: 'ms',
      unmet,
    });
    out.at(-1).detail = `Tether recovered ${truns.map((r) => `${r.recoveredEvents}/${r.missedEvents}`).join(', ')} missed events (publisher-counted) in ${truns.length} run(s)`;
  }
  const order = ['fanout-capacity', 'cpu-per-delivery', 'p99-equal-rates', 'cpu-per-connect', 'mass-join', 'storm-recovery', 'connect-rate', 'idle-memory'];
  return out.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
}

// The tables of one run, built from its results JSON only: the harness prints them as text, and
// bench/render.mjs writes them into BENCHMARKS.md. Each cell is the median over the repeats with
// the min–max spread when they differ; ratio columns are ratios of medians.
import { meterWindows, spread } from './lib/util.mjs';

const ORDER = ['plain', 'careful', 'csr', 'tether'];

export function num(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v;
  if (v === Infinity) return '∞';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function runsOf(results, scenario, target) {
  return (results.runs?.[scenario]?.[target] ?? []).filter((r) => !r.error);
}

function pick(run, get) {
  try {
    const v = get(run);
    return v === undefined ? null : v;
  } catch {
    return null;
  }
}

/** A table of `rows` ([label, get(run)]) with one column per target and Tether/baseline ratios. */
function scenarioTable(results, scenario, title, rows, note) {
  const targets = ORDER.filter((t) => results.runs?.[scenario]?.[t]);
  if (!targets.length) return null;
  const base = targets.filter((t) => t !== 'tether' && targets.includes('tether') && (t === 'plain' || t === 'careful'));
  const header = ['', ...targets, ...base.map((t) => `tether/${t}`)];
  const body = [];
  for (const [label, get] of rows) {
    if (get === null) {
      body.push([label, ...targets.map(() => ''), ...base.map(() => '')]);
      continue;
    }
    const st = Object.fromEntries(targets.map((t) => [t, spread(runsOf(results, scenario, t).map((r) => pick(r, get)))]));
    const failed = Object.fromEntries(targets.map((t) => [t, (results.runs[scenario][t] ?? []).filter((r) => r.error).length]));
    const cells = targets.map((t) => {
      const s = st[t];
      if (!s.n) {
        if (!s.of) return failed[t] ? 'failed' : '—';
        const raw = runsOf(results, scenario, t).map((r) => pick(r, get));
        return raw.some((x) => typeof x === 'string' || typeof x === 'boolean') ? [...new Set(raw.map(num))].join(' / ') : '—';
      }
      let c = num(s.med);
      if (s.n > 1 && s.min !== s.max) c += ` (${num(s.min)}–${num(s.max)})`;
      if (s.n < s.of) c += ` [${s.of - s.n}× —]`;
      return c;
    });
    const ratios = base.map((t) => {
      const a = st.tether.med;
      const b = st[t].med;
      if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '—';
      return `${num(Math.round((a / b) * 100) / 100)}`;
    });
    body.push([label, ...cells, ...ratios]);
  }
  return { type: 'table', title, note, header, rows: body };
}

/** Redis commands by name per operation, from the first successful run of each target. */
function commandBlocks(results) {
  const lines = [];
  const per = (cost, ops) => (cost && ops ? cost.topCommands.map(([name, n]) => `${name} ${num(n / ops)}`).join(', ') : null);
  for (const t of ORDER) {
    const sr = runsOf(results, 'small-rooms', t)[0];
    const fo = runsOf(results, 'fanout', t)[0];
    const parts = [];
    if (sr) parts.push(`per connect+join: ${per(sr.connect.cost, sr.connect.connections)}`);
    if (sr) parts.push(`per reconnect+rejoin: ${per(sr.rejoin.cost, sr.rejoin.rejoined)}`);
    if (sr?.steps?.[0]) parts.push(`per publish (small rooms): ${per(sr.steps[0].cost, sr.steps[0].published)}`);
    if (fo?.equal?.[0]) parts.push(`per publish (large rooms): ${per(fo.equal[0].cost, fo.equal[0].published)}`);
    if (parts.length) lines.push(`${t}: ${parts.filter((p) => !p.endsWith('null')).join('; ')}`);
  }
  return lines.length ? { type: 'text', title: 'Redis commands by name, per operation (first run of each target; commands inside Lua scripts count individually)', lines } : null;
}

export function buildReport(results) {
  const S = results.meta.sizes;
  const blocks = [];
  const sr = results.runs?.['small-rooms'];
  if (sr) {
    const pl = Object.values(sr).flat().find((r) => r.placement)?.placement;
    const rows = [
      ['connect+join', null],
      ['connections', (r) => r.connect.connections],
      ['connect+join per s', (r) => r.connect.perSec],
      ['worker CPU µs per connect+join', (r) => r.connect.workerCpuUsPerConnect],
      ['Redis CPU µs per connect+join', (r) => r.connect.redisCpuUsPerConnect],
      ['Redis commands per connect+join', (r) => r.connect.redisCmdsPerConnect],
      ['idle memory per connection', null],
      ['worker heap KB (after full GC)', (r) => r.idle.heapPerConnKB],
      ['Redis KB', (r) => r.idle.redisPerConnKB],
      ['heap + Redis KB', (r) => r.idle.heapPlusRedisPerConnKB],
      ['worker RSS KB', (r) => r.idle.rssPerConnKB],
      [`reconnect + rejoin (${Math.round(S.rejoinFraction * 100)} % of the members drop and come back)`, null],
      ['rejoins', (r) => r.rejoin.rejoined],
      ['ms until all back', (r) => r.rejoin.allBackMs],
      ['worker CPU µs per rejoin', (r) => r.rejoin.workerCpuUsPerRejoin],
      ['Redis CPU µs per rejoin', (r) => r.rejoin.redisCpuUsPerRejoin],
      ['Redis commands per rejoin', (r) => r.rejoin.redisCmdsPerRejoin],
      ['presence deliveries per rejoin', (r) => r.rejoin.presenceDeliveriesPerRejoin],
    ];
    S.smallRates.forEach((rate, i) => {
      rows.push([`publishing ${rate} msgs/s per room (${rate * S.smallRooms}/s in total)`, null]);
      rows.push(['deliveries per s', (r) => r.steps[i].deliveredPerSec]);
      rows.push(['p50 / p99 ms', (r) => r.steps[i].p99Ms === null ? null : `${r.steps[i].p50Ms} / ${r.steps[i].p99Ms}`]);
      rows.push(['p99 ms', (r) => r.steps[i].p99Ms]);
      rows.push(['lost deliveries', (r) => r.steps[i].lost]);
      rows.push(['worker CPU µs per delivery', (r) => r.steps[i].workerCpuUsPerDelivery]);
      rows.push(['worker CPU µs per publish', (r) => r.steps[i].workerCpuUsPerPublish]);
      rows.push(['Redis CPU µs per publish', (r) => r.steps[i].redisCpuUsPerPublish]);
      rows.push(['Redis commands per publish', (r) => r.steps[i].redisCmdsPerPublish]);
      rows.push(['load generators CPU % (of one core)', (r) => r.steps[i].cost.generatorsPct]);
    });
    blocks.push(
      scenarioTable(
        results,
        'small-rooms',
        `small rooms: ${S.smallRooms} rooms × ${S.smallMembers} members${pl ? `, ${pl.roomsSpanningBothWorkers}/${pl.rooms} rooms on both workers` : ''}`,
        rows.filter(([l]) => l !== 'p50 / p99 ms'),
      ),
    );
  }
  const fo = results.runs?.fanout;
  if (fo) {
    const pl = Object.values(fo).flat().find((r) => r.placement)?.placement;
    const where = pl ? `, ${pl.roomsSpanningBothWorkers}/${pl.rooms} rooms on both workers (worker 0 holds ${pl.worker0ShareMin}–${pl.worker0ShareMax} % of each), ${pl.publishersPerRoom} publishing members per room` : '';
    blocks.push(
      scenarioTable(results, 'fanout', `mass join: ${S.fanoutRooms} rooms filled to ${S.fanoutMembers} members by first joins${where}`, [
        ['joins', (r) => r.massJoin.joins],
        ['ms until all joined', (r) => r.massJoin.allJoinedMs],
        ['ms until join announcements stopped', (r) => r.massJoin.quietAfterMs],
        ['deliveries of join announcements', (r) => r.massJoin.joinDeliveries],
        ['  of which room:presence batches', (r) => r.massJoin.presenceBatches],
        ['one broadcast per join, joins one at a time', (r) => r.massJoin.oneBroadcastPerJoinDeliveries],
        ['worker CPU µs per join', (r) => r.massJoin.workerCpuUsPerJoin],
        ['Redis commands per join', (r) => r.massJoin.redisCmdsPerJoin],
      ]),
    );
    const rows = [];
    S.fanoutRates.forEach((rate, i) => {
      rows.push([`${rate} msgs/s per room (${rate * S.fanoutRooms} publishes/s, ${rate * S.fanoutRooms * S.fanoutMembers} deliveries/s)`, null]);
      rows.push(['deliveries per s', (r) => r.equal[i].deliveredPerSec]);
      rows.push(['p50 ms', (r) => r.equal[i].p50Ms]);
      rows.push(['p99 ms', (r) => r.equal[i].p99Ms]);
      rows.push(['lost deliveries', (r) => r.equal[i].lost]);
      rows.push(['worker CPU µs per delivery', (r) => r.equal[i].workerCpuUsPerDelivery]);
      rows.push(['worker CPU µs per publish', (r) => r.equal[i].workerCpuUsPerPublish]);
      rows.push(['Redis CPU µs per publish', (r) => r.equal[i].redisCpuUsPerPublish]);
      rows.push(['Redis commands per publish', (r) => r.equal[i].redisCmdsPerPublish]);
      rows.push(['load generators CPU % (of one core)', (r) => r.equal[i].cost.generatorsPct]);
    });
    rows.push(['all equal-rate steps', null]);
    rows.push(['worker CPU µs per delivery', (r) => r.equalTotals.workerCpuUsPerDelivery]);
    rows.push(['worker CPU µs per publish', (r) => r.equalTotals.workerCpuUsPerPublish]);
    blocks.push(scenarioTable(results, 'fanout', `fan-out at equal rates: ${S.fanoutRooms} rooms × ${S.fanoutMembers} members, ${S.fanoutStepMs / 1000} s per rate`, rows));
    blocks.push(
      scenarioTable(results, 'fanout', 'fan-out capacity: highest total publish rate with p99 < 250 ms, nothing lost, ≥ 90 % of the rate achieved (bisection to ±10 %)', [
        ['capacity, publishes/s', (r) => r.capacity.capacityPerSec],
        ['deliveries/s at capacity', (r) => r.capacity.capacityDeliveredPerSec],
        ['p99 ms at capacity', (r) => r.capacity.p99AtCapacityMs],
        ['first failing rate, publishes/s', (r) => r.capacity.firstFailPerSec],
        ['resolved to ±10 %', (r) => r.capacity.resolved],
        ['stopped at the publish-limit cap', (r) => r.capacity.capped],
        ['probes', (r) => r.capacity.probes.length],
      ]),
    );
  }
  const stormRows = [
    ['clients / affected', (r) => `${r.clients} / ${r.affected}`],
    ['back in their room %', (r) => r.rejoinedPct],
    ['ms until 99 % back', (r) => r.timeTo99RejoinedMs],
    ['ms until 100 % back', (r) => r.timeTo100RejoinedMs],
    ['missed events (counted by the publisher)', (r) => r.missedEvents],
    ['missed events received', (r) => r.recoveredEvents],
    ['recovered % of missed', (r) => r.recoveredPct],
    ['clients back with every event %', (r) => r.completePct],
    ['ms until 99 % back with every missed event', (r) => r.timeTo99CompleteMs],
    ['ms until 100 % back with every missed event', (r) => r.timeTo100CompleteMs],
    ['events never received (affected clients)', (r) => r.lostAffected],
    ['events never received (unaffected clients)', (r) => r.lostUnaffected],
    ['clients with silent loss (not told)', (r) => r.silentLossClients],
    ['clients told to resync', (r) => r.toldClients],
    ['presence deliveries (live)', (r) => r.presenceDeliveries],
    ['  + replayed in catch-up', (r) => r.presenceReplayed],
    ['duplicates (dropped by the receiver)', (r) => r.duplicates],
    ['events first received by a gap fill (broadcast lost, or later than the gap wait)', (r) => r.gapFilledEvents],
    ['reconnect p50 ms (drop → session)', (r) => r.reconnectMsP50],
    ['connect attempts per affected client, mean', (r) => r.reconnectAttemptsMean ?? null],
    ['connect attempts per affected client, max', (r) => r.reconnectAttemptsMax ?? null],
    ['failed connect attempts: no session within 10 s', (r) => failedAttempts(r, (why) => why.startsWith('no session within 10s'))],
    ['  of which queued unaccepted (TCP connected, 0 bytes read)', (r) => failedAttempts(r, (why) => why.includes('tcp connected, 0 bytes read'))],
    ['failed connect attempts: other reasons', (r) => failedAttempts(r, (why) => !why.startsWith('no session within 10s'))],
    ['rejoin ack p50 ms', (r) => r.rejoinAckMsP50],
    ['rejoin ack p99 ms', (r) => r.rejoinAckMsP99],
    ['old NODE_ID left the node set after ms (reaper, or its clean stop)', (r) => r.reaperActedMs],
    ['worker restart to ready ms', (r) => r.workerRestartMs],
    ['Redis CPU s during the observation', (r) => r.redisCpuSec],
    ['Redis commands during the observation', (r) => r.redisCommands],
    ['events published (acked)', (r) => r.published],
  ];
  const stormTitle = {
    'storm-kill': 'storm: SIGKILL of one worker, restarted under a fresh NODE_ID (production default)',
    'storm-kill-same-id': 'storm: SIGKILL of one worker, respawned under the same NODE_ID',
    'storm-drain': 'storm: SIGTERM (drain) of one worker, restarted',
  };
  for (const [sc, title] of Object.entries(stormTitle)) {
    if (!results.runs?.[sc]) continue;
    blocks.push(
      scenarioTable(
        results,
        sc,
        `${title}: ${S.stormClients} clients in ${S.stormRooms} rooms (half of every room on each worker), ${S.stormRatePerRoom} events/s per room over HTTP, observed ${S.stormObserveMs / 1000} s`,
        stormRows,
      ),
    );
  }
  for (const sc of ['catchup', 'catchup-past-retention']) {
    const any = Object.values(results.runs?.[sc] ?? {})
      .flat()
      .find((r) => r.cases);
    if (!any) continue;
    const rows = [];
    for (const name of Object.keys(any.cases)) {
      rows.push([name, null]);
      rows.push(['clients away', (r) => r.cases[name].dropped]);
      rows.push(['missed events (counted by the publisher)', (r) => r.cases[name].missedEvents]);
      rows.push(['recovered % of missed', (r) => r.cases[name].recoveredPct]);
      rows.push(['clients told to resync', (r) => r.cases[name].toldClients]);
      rows.push(['clients with silent loss', (r) => r.cases[name].silentLossClients]);
      rows.push(['duplicates (dropped)', (r) => r.cases[name].duplicates]);
      rows.push(['correct (every event, or told)', (r) => r.cases[name].correct]);
    }
    const what = sc === 'catchup' ? 'back to the same worker' : `back after the retention (shortened to ${S.retentionMs / 1000} s for this scenario)`;
    blocks.push(scenarioTable(results, sc, `catch-up: ${S.catchupClients} clients in ${S.catchupRooms} rooms, half drop their transport and come ${what}, ${S.catchupRatePerRoom} events/s per room`, rows));
  }
  blocks.push(commandBlocks(results));
  // Load outside the benchmark and generator load, per run: what makes a figure noisy.
  const runLines = [];
  for (const [sc, byT] of Object.entries(results.runs ?? {})) {
    for (const [t, list] of Object.entries(byT)) {
      for (const r of list) {
        if (r.error) {
          runLines.push(`${sc} × ${t} #${r.repeat + 1}: FAILED: ${r.error.split('\n')[0]}`);
          continue;
        }
        const cs = meterWindows(r);
        const other = cs.length ? `${num(Math.max(...cs.map((c) => c.otherLoadPct ?? 0)))} %` : '—';
        const gens = cs.length ? `${num(Math.max(...cs.map((c) => c.generatorsPct ?? 0)))} %` : '—';
        const m = r.machine ? `; at start: calibration loop ${num(r.machine.calibrationMs)} ms, TCP TIME_WAIT ${r.machine.tcpTimeWait ?? '—'}` : '';
        runLines.push(`${sc} × ${t} #${r.repeat + 1}: ${r.seconds} s; max outside load ${other} of the machine, max generators ${gens} of a core${m}`);
      }
    }
  }
  if (runLines.length) blocks.push({ type: 'text', title: 'runs (in the order they ran within each scenario)', lines: runLines });
  if (results.targets?.length) blocks.push({ type: 'targets', title: 'targets (issue 15): Tether against plain, medians over the repeats; reported, never asserted', items: results.targets });
  return blocks.filter(Boolean);
}

export function toText(blocks) {
  const out = [];
  for (const b of blocks) {
    out.push(`\n== ${b.title}`);
    if (b.type === 'text') {
      out.push(...b.lines);
      continue;
    }
    if (b.type === 'targets') {
      for (const t of b.items) out.push(`${t.pass ? 'PASS' : 'MISS'}  ${t.name} (${t.threshold}): ${t.value}${t.note ? `  [${t.note}]` : ''}${t.detail ? `\n      ${t.detail}` : ''}`);
      continue;
    }
    const all = [b.header, ...b.rows];
    const widths = b.header.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)));
    const line = (r) => r.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ').trimEnd();
    out.push(line(b.header), widths.map((w) => '-'.repeat(w)).join('  '), ...b.rows.map(line));
    if (b.after?.length) out.push(...b.after);
  }
  return `${out.join('\n')}\n`;
}

export function toMarkdown(blocks, level = '###') {
  const out = [];
  const esc = (c) => String(c ?? '').replace(/\|/g, '\\|');
  for (const b of blocks) {
    out.push(`${level} ${b.title}`, '');
    if (b.type === 'text') {
      out.push(...b.lines.map((l) => `- ${l}`), '');
      continue;
    }
    if (b.type === 'targets') {
      out.push('| | target | threshold | Tether vs plain | ratio | why it cannot pass |', '|---|---|---|---|---:|---|');
      for (const t of b.items) out.push(`| **${t.pass ? 'PASS' : 'MISS'}** | ${esc(t.name)} | ${esc(t.threshold)} | ${esc(t.value.replace(/ → .*$/, ''))} | ${t.ratio === null ? '—' : `${num(t.ratio)}×`} | ${esc(t.note ?? '')} |`);
      out.push('');
      const details = b.items.filter((t) => t.detail).map((t) => `- ${t.name}: ${t.detail}`);
      if (details.length) out.push(...details, '');
      continue;
    }
    out.push(`| ${b.header.map(esc).join(' | ')} |`, `|${b.header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
    for (const r of b.rows) {
      const section = r.slice(1).every((c) => c === '');
      out.push(`| ${section ? `**${esc(r[0])}**` : esc(r[0])} | ${r.slice(1).map(esc).join(' | ')} |`);
    }
    out.push('');
    if (b.after?.length) out.push(...b.after.map((l) => `- ${l}`), '');
  }
  return out.join('\n');
}

/** Failed connect attempts of a storm run whose reason matches (null for runs that did not record them). */
function failedAttempts(r, match) {
  if (!r.attemptFailures) return null;
  return Object.entries(r.attemptFailures).reduce((n, [why, f]) => n + (match(why) ? f.attempts : 0), 0);
}

// The benchmark's judgement of outages and targets (bench/lib/judge.mjs, bench/targets.mjs) on
// hand-made records: missed events come from the publisher's record, "recovered" cannot be 100 %
// when nothing was missed, and no target passes on a zero, a missing figure or a reduced size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeOutage } from '../../bench/lib/judge.mjs';
import { evaluateTargets } from '../../bench/targets.mjs';

// Room A: events 1..6 sent at t = 100, 200, … 600; event 5 was never acknowledged.
const pub = { rooms: { A: { sent: [100, 200, 300, 400, 500, 600], acked: [1, 1, 1, 1, 0, 1] } } };

test('missed events are counted from the publisher record: not held at the drop, sent before the client was back', () => {
  const recs = [
    // Dropped at 250 holding 1..2, back at 450, ends holding everything: missed 3 and 4 (5 unacked).
    { roomId: 'A', affected: true, dropAt: 250, connectedAt: 400, rejoinedAt: 450, held: { contig: 2, above: [] }, contig: 6, above: [], arrivals: [3, 430, 4, 440, 6, 610], told: false, dups: 0 },
    // Dropped at 250 holding 1..2, back at 450, never got 3: one lost, silently.
    { roomId: 'A', affected: true, dropAt: 250, connectedAt: 400, rejoinedAt: 450, held: { contig: 2, above: [] }, contig: 2, above: [4, 6], arrivals: [4, 440, 6, 610], told: false, dups: 1 },
    { roomId: 'A', contig: 6, above: [], dups: 0 },
  ];
  const r = judgeOutage(pub, recs, 200, 1000);
  assert.equal(r.affected, 2);
  assert.equal(r.missedEvents, 4);
  assert.equal(r.recoveredEvents, 3);
  assert.equal(r.recoveredPct, 75);
  assert.equal(r.complete, 1);
  assert.equal(r.timeTo100RejoinedMs, 250);
  assert.equal(r.timeTo100CompleteMs, null, 'one client never got everything');
  assert.equal(r.timeTo99CompleteMs, null);
  assert.equal(r.silentLossClients, 1);
  assert.equal(r.lostAffected, 1);
  assert.equal(r.lostUnaffected, 0);
  assert.equal(r.published, 5);
  assert.equal(r.publishFailed, 1);
  assert.equal(r.duplicates, 1);
});

test('told clients are counted with the path that told them; a told client is never a silent loss', () => {
  const base = { roomId: 'A', affected: true, dropAt: 250, connectedAt: 400, rejoinedAt: 450, held: { contig: 2, above: [] }, contig: 2, above: [6], arrivals: [6, 610], dups: 0 };
  const recs = [
    { ...base, told: true, snapshot: true, toldWhy: 'room:rejoin NOT_IN_ROOM (evicted)' },
    { ...base, told: true, snapshot: true, toldWhy: 'room:rejoin NOT_IN_ROOM (evicted)' },
    { ...base, told: true, snapshot: true, toldWhy: 'room:state_snapshot (lastSeq 2, room seq 6)' },
    { ...base, told: true, snapshot: true },
    { ...base, contig: 6, above: [], arrivals: [3, 430, 4, 440, 6, 610], told: false },
  ];
  const r = judgeOutage(pub, recs, 200, 1000);
  assert.equal(r.toldClients, 4);
  assert.deepEqual(r.toldReasons, { 'room:rejoin NOT_IN_ROOM (evicted)': 2, 'room:state_snapshot (lastSeq 2, room seq 6)': 1, unknown: 1 });
  assert.equal(r.silentLossClients, 0);
  assert.equal(r.snapshots, 4);
});

test('failed connect attempts are grouped by reason with the median time one took', () => {
  const base = { roomId: 'A', affected: true, dropAt: 250, connectedAt: 400, rejoinedAt: 450, held: { contig: 2, above: [] }, contig: 6, above: [], arrivals: [], told: false, dups: 0 };
  const timeout = 'no session within 10s (transport opening, tcp connected, 0 bytes read)';
  const recs = [
    { ...base, attempts: 3, failures: [timeout, 10_004, 'connect_error: websocket error', 3] },
    { ...base, attempts: 2, failures: [timeout, 10_010] },
    { ...base, attempts: 2, failures: [timeout, 10_001] },
    { ...base, attempts: 1, failures: [] },
  ];
  const r = judgeOutage(pub, recs, 200, 1000);
  assert.deepEqual(r.attemptFailures, {
    [timeout]: { attempts: 3, msP50: 10_004 },
    'connect_error: websocket error': { attempts: 1, msP50: 3 },
  });
  assert.equal(r.reconnectAttemptsMean, 2);
  assert.deepEqual(judgeOutage(pub, [{ ...base, attempts: 1 }], 200, 1000).attemptFailures, {}, 'a record without failures (older generators) counts none');
});

test('nothing missed gives recovered "—" (null), never 100 %; events before fromMs are not judged', () => {
  const recs = [{ roomId: 'A', affected: true, dropAt: 650, connectedAt: 660, rejoinedAt: 670, held: { contig: 6, above: [] }, contig: 6, above: [], arrivals: [], told: false, dups: 0 }];
  const r = judgeOutage(pub, recs, 640, 700);
  assert.equal(r.missedEvents, 0);
  assert.equal(r.recoveredPct, null);
  const lossBefore = [{ roomId: 'A', contig: 1, above: [3, 4, 6], dups: 0 }];
  assert.equal(judgeOutage(pub, lossBefore, 0, 700).lostUnaffected, 1);
  assert.equal(judgeOutage(pub, lossBefore, 0, 700, 250).lostUnaffected, 0, 'event 2 (sent at 200) belongs to an earlier outage');
});

function results(over: Record<string, unknown> = {}) {
  const fan = (cap: number, cpu: number, p99: number, joins: number) => ({
    placement: { rooms: 10, roomsSpanningBothWorkers: 10 },
    capacity: { capacityPerSec: cap },
    equalTotals: { workerCpuUsPerDelivery: cpu },
    equal: [{ p99Ms: p99 }],
    massJoin: { joins: 5000, joinDeliveries: joins },
  });
  const small = (cpu: number, rate: number, mem: number) => ({ placement: { rooms: 1000, roomsSpanningBothWorkers: 1000 }, connect: { connections: 5000, workerCpuUsPerConnect: cpu, perSec: rate }, idle: { heapPlusRedisPerConnKB: mem } });
  const storm = (extra: Record<string, unknown>) => ({ clients: 5000, env: {}, missedEvents: 100, recoveredEvents: 100, recoveredPct: 100, completePct: 100, timeTo100CompleteMs: 4000, timeTo100RejoinedMs: 4000, ...extra });
  return {
    meta: { quick: false, sizes: { fanoutRates: [4], fanoutRooms: 10 } },
    runs: {
      fanout: { tether: [fan(50, 25, 100, 10_000)], plain: [fan(40, 30, 80, 1_250_000)] },
      'small-rooms': { tether: [small(1100, 1000, 12)], plain: [small(1000, 900, 13)] },
      'storm-kill': { tether: [storm({})], plain: [storm({ timeTo100RejoinedMs: 6000 })] },
      ...over,
    },
  };
}

test('targets: PASS only with both figures, the ratio met and the conditions met', () => {
  const t = Object.fromEntries(evaluateTargets(results()).map((x: { id: string }) => [x.id, x]));
  assert.equal(Object.keys(t).length, 8);
  for (const id of ['fanout-capacity', 'cpu-per-delivery', 'p99-equal-rates', 'cpu-per-connect', 'mass-join', 'storm-recovery', 'connect-rate', 'idle-memory']) assert.equal(t[id].pass, true, `${id}: ${t[id].value} ${t[id].note ?? ''}`);
});

test('targets: a zero or missing baseline, an incomplete recovery, overrides or a reduced size make them MISS', () => {
  const zero = evaluateTargets(results({ fanout: { tether: [{ placement: { rooms: 10, roomsSpanningBothWorkers: 10 }, capacity: { capacityPerSec: 0 }, equalTotals: {}, equal: [{}], massJoin: { joins: 5000, joinDeliveries: 0 } }], plain: [{ placement: { rooms: 10, roomsSpanningBothWorkers: 10 }, capacity: { capacityPerSec: 0 }, equalTotals: {}, equal: [{}], massJoin: { joins: 5000, joinDeliveries: 0 } }] } }));
  for (const x of zero.filter((y: { id: string }) => ['fanout-capacity', 'mass-join', 'cpu-per-delivery', 'p99-equal-rates'].includes(y.id))) assert.equal(x.pass, false, `${x.id} passed on zeros`);

  const partial = results({ 'storm-kill': { tether: [{ clients: 5000, env: {}, missedEvents: 100, recoveredEvents: 99, recoveredPct: 99, completePct: 99.8, timeTo100CompleteMs: null }], plain: [{ timeTo100RejoinedMs: 6000 }] } });
  assert.equal(evaluateTargets(partial).find((x: { id: string }) => x.id === 'storm-recovery').pass, false);
  const nothingMissed = results({ 'storm-kill': { tether: [{ clients: 5000, env: {}, missedEvents: 0, recoveredEvents: 0, recoveredPct: null, completePct: 100, timeTo100CompleteMs: 10 }], plain: [{ timeTo100RejoinedMs: 6000 }] } });
  assert.equal(evaluateTargets(nothingMissed).find((x: { id: string }) => x.id === 'storm-recovery').pass, false);
  const tuned = results({ 'storm-kill': { tether: [{ clients: 5000, env: { DRAIN_INTERVAL_MS: '20' }, missedEvents: 100, recoveredEvents: 100, recoveredPct: 100, completePct: 100, timeTo100CompleteMs: 10 }], plain: [{ timeTo100RejoinedMs: 6000 }] } });
  const st = evaluateTargets(tuned).find((x: { id: string }) => x.id === 'storm-recovery');
  assert.equal(st.pass, false);
  assert.match(st.note, /production defaults/);

  const small = results();
  (small.runs['small-rooms'].tether[0] as { connect: { connections: number } }).connect.connections = 1000;
  assert.match(evaluateTargets(small).find((x: { id: string }) => x.id === 'connect-rate').note, /reduced size/);
  const oneWorker = results();
  (oneWorker.runs.fanout.plain[0] as { placement: { roomsSpanningBothWorkers: number } }).placement.roomsSpanningBothWorkers = 0;
  assert.equal(evaluateTargets(oneWorker).find((x: { id: string }) => x.id === 'fanout-capacity').pass, false);
});

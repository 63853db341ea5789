// Smoke test of the benchmark harness: `node scripts/bench.mjs --quick --json <tmp>` must exit 0
// within the time budget and write a JSON with every scenario × target and sane numbers. Timings
// are not asserted: this machine is shared and small, and the numbers are noisy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TARGETS = ['tether', 'plain', 'csr'];
const SCENARIOS = ['idle', 'fanout', 'storm', 'catchup'];
const BUDGET_MS = 230_000;

/** Every number anywhere under `v` is finite and ≥ 0 (nulls allowed: "not reached"). */
function assertSaneNumbers(v: unknown, path: string): void {
  if (typeof v === 'number') {
    assert.ok(Number.isFinite(v) && v >= 0, `${path} = ${v} is not a finite non-negative number`);
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => assertSaneNumbers(x, `${path}[${i}]`));
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) assertSaneNumbers(x, `${path}.${k}`);
  }
}

test('npm run bench -- --quick runs every scenario against every target and writes sane JSON', { timeout: BUDGET_MS + 20_000 }, async () => {
  assert.ok(existsSync(join(ROOT, 'dist/main.js')), 'dist/main.js missing: run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'bench-quick-'));
  const out = join(dir, 'bench.json');
  try {
    const started = Date.now();
    const child = spawn(process.execPath, [join(ROOT, 'scripts/bench.mjs'), '--quick', '--json', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGTERM'), BUDGET_MS);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const elapsed = Date.now() - started;
    assert.equal(code, 0, `bench exited with ${code} after ${elapsed} ms:\n${log.slice(-4000)}`);
    assert.ok(elapsed < BUDGET_MS, `bench took ${elapsed} ms`);

    const r = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(r.meta.quick, true);
    for (const s of SCENARIOS) {
      for (const t of TARGETS) {
        const res = r.scenarios?.[s]?.[t];
        assert.ok(res && typeof res === 'object', `missing ${s} × ${t}`);
        assert.equal(res.error, undefined, `${s} × ${t} failed: ${res.error}`);
      }
    }
    for (const t of TARGETS) {
      const idle = r.scenarios.idle[t];
      assert.ok(idle.levels.length >= 1 && idle.last.connections > 0, `idle ${t}: no connections`);
      assert.equal(typeof idle.last.heapPerConnKB, 'number');
      assert.equal(typeof idle.last.rssPerConnKB, 'number');
      const fan = r.scenarios.fanout[t];
      assert.ok(fan.steps.length >= 1 && fan.steps[0].delivered > 0, `fanout ${t}: nothing delivered`);
      assert.equal(typeof fan.capacityPublishPerSec, 'number');
      for (const v of ['kill', 'drain']) {
        const st = r.scenarios.storm[t][v];
        assert.ok(st.affected > 0, `storm ${v} ${t}: no affected clients`);
        for (const k of ['rejoinedPct', 'completePct', 'presenceMessages', 'missedPublished', 'missedDelivered', 'recoveredWithoutSnapshotPct']) assert.equal(typeof st[k], 'number', `storm ${v} ${t}: ${k}`);
        assert.ok(st.missedDelivered <= st.missedPublished, `storm ${v} ${t}: delivered more missed events than published`);
      }
      const cu = r.scenarios.catchup[t];
      assert.ok(Object.keys(cu).length >= 3, `catchup ${t}: expected 1s, 3s and past-retention cases`);
      for (const [name, c] of Object.entries<any>(cu)) {
        assert.ok(c.dropped > 0, `catchup ${name} ${t}: nobody dropped`);
        assert.equal(typeof c.eventsRecoveredPct, 'number');
        assert.equal(typeof c.correct, 'boolean');
      }
    }
    assertSaneNumbers(r.scenarios, 'scenarios');
    assertSaneNumbers(r.cpu, 'cpu');
    assert.ok(Array.isArray(r.targets) && r.targets.length > 0, 'targets evaluated');
    for (const tg of r.targets) assert.equal(typeof tg.pass, 'boolean');
    // Every generator, worker and redis-server is gone after the run.
    assert.ok(log.includes('== storm'), 'tables printed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Runs every test file under test/ with node's test runner (TypeScript through tsx).
// Node 20's runner does not expand globs, so the files are listed here. Pass paths to run a subset
// (on the topology TEST_REDIS_TOPOLOGY names, standalone by default).
//
// Without paths (`npm test`) there is a second pass on a local 3-master Redis Cluster
// (TEST_REDIS_TOPOLOGY=cluster): the same test files, chosen to fit the time budget of the whole
// run on a 2-core machine — every integration file but the bench/k6 harness checks (they test the
// tooling, not Redis), and the cluster-suite files whose code paths differ on a Cluster: global
// keys (server API room index, webhook outboxes and the sweeper's SCAN), rate limits (hostile),
// cross-worker broadcasts and removals (delivery, rooms). resharding and sentinel-failover run
// in the first pass on their own topologies. TEST_TOPOLOGIES=standalone skips the second pass.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'helpers' ? [] : find(p);
    return name.endsWith('.test.ts') ? [p] : [];
  });
}

const CLUSTER_SKIP = new Set(['test/integration/bench-quick.test.ts', 'test/integration/k6-scripts.test.ts']);
const CLUSTER_SUITE = ['webhooks', 'server-api', 'hostile', 'delivery', 'rooms'].map((f) => `test/cluster/${f}.test.ts`);

/** Runs the files, streaming the runner's output, and keeps its summary counts. */
function run(files, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=300000', ...files], {
      stdio: ['inherit', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
    const counts = {};
    let tail = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (tail + chunk.toString()).split('\n');
      tail = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
        if (m) counts[m[1]] = Number(m[2]);
      }
    });
    child.on('close', (code) => resolve({ status: code ?? 1, counts }));
  });
}

const args = process.argv.slice(2);
if (args.length) process.exit((await run(args, {})).status);

const started = Date.now();
const first = await run(find('test').sort(), {});
if (process.env.TEST_TOPOLOGIES === 'standalone') process.exit(first.status);
process.stdout.write(`\n# standalone pass: ${Math.round((Date.now() - started) / 1000)} s; cluster pass (TEST_REDIS_TOPOLOGY=cluster) follows\n`);
const second = await run([...find('test/integration').sort().filter((f) => !CLUSTER_SKIP.has(f)), ...CLUSTER_SUITE], { TEST_REDIS_TOPOLOGY: 'cluster' });
// One summary for both passes, last, in the runner's own format.
process.stdout.write(`\n# both passes (standalone, then a 3-master Redis Cluster): ${Math.round((Date.now() - started) / 1000)} s\n`);
for (const k of ['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo']) process.stdout.write(`# ${k} ${(first.counts[k] ?? 0) + (second.counts[k] ?? 0)}\n`);
// A pass that died before its summary must not read as green.
const missing = [first, second].some((r) => r.counts.pass === undefined);
process.exit(first.status || second.status || (missing ? 1 : 0));

/**
 * deploy/prometheus: promtool accepts the config and the rules, the alert unit tests
 * (alerts.test.yml) pass, every metric an alert uses is one a worker exports, and the chart's
 * copy of the rules is identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { metricNamesIn, exportedSeriesNames, PROMETHEUS_SYNTHETIC } from './promql-names.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
const SKIP = !PROMTOOL && 'promtool not installed: apt-get install prometheus';

function promtool(...args: string[]) {
  return spawnSync(PROMTOOL!, args, { cwd: ROOT, encoding: 'utf8', timeout: 8000 });
}

interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
const alertsDoc = YAML.parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
const rules = alertsDoc.groups.flatMap((g) => g.rules);

test('promtool check config deploy/prometheus/prometheus.yml', { skip: SKIP }, () => {
  const r = promtool('check', 'config', 'deploy/prometheus/prometheus.yml');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /1 rule files found/);
});

test('promtool check rules deploy/prometheus/alerts.yml', { skip: SKIP }, () => {
  const r = promtool('check', 'rules', 'deploy/prometheus/alerts.yml');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`${rules.length} rules found`));
});

test('promtool test rules: alerts fire on their symptoms (alerts.test.yml)', { skip: SKIP }, () => {
  const r = promtool('test', 'rules', 'deploy/prometheus/alerts.test.yml');
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('the alerts the runbook promises exist, each with severity, summary and description', () => {
  const names = rules.map((r) => r.alert);
  for (const required of [
    'TetherReconnectStorm', 'TetherGraceEvictionsHigh', 'TetherCatchupSnapshotsRising', 'TetherRedisUnreachable',
    'TetherEventLoopLagHigh', 'TetherQueueBacklog', 'TetherFanoutLatencyHigh', 'TetherWorkerDown', 'TetherRateLimitingSpike',
  ]) assert.ok(names.includes(required), `missing alert ${required}`);
  assert.equal(new Set(names).size, names.length, 'duplicate alert names');
  for (const r of rules) {
    assert.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: severity label`);
    assert.ok(r.annotations?.summary && r.annotations?.description, `${r.alert}: summary and description`);
  }
});

test('metric-name extraction finds names and ignores functions, labels, keywords', () => {
  const got = metricNamesIn('sum by (le, op) (rate(foo_bucket{job="x", a=~"b|c"}[5m] offset 1h)) / on(instance) group_left bar > 0.5 and absent(baz{q="up"}) or vector(1)');
  assert.deepEqual([...got].sort(), ['bar', 'baz', 'foo_bucket']);
  assert.deepEqual([...metricNamesIn('rate(x_total{instance=~"$instance"}[$__rate_interval])')], ['x_total']);
});

test('every metric an alert uses is exported by a worker (src/observability/metrics.ts or prom-client defaults)', async () => {
  const exported = await exportedSeriesNames();
  assert.ok(exported.has('tether_connected_clients') && exported.has('tether_event_fanout_seconds_bucket'));
  assert.ok(exported.has('nodejs_eventloop_lag_p99_seconds'), 'prom-client default metrics missing');
  const unknown: string[] = [];
  for (const r of rules) {
    for (const name of metricNamesIn(r.expr)) {
      if (!exported.has(name) && !PROMETHEUS_SYNTHETIC.has(name)) unknown.push(`${r.alert}: ${name}`);
    }
  }
  assert.deepEqual(unknown, []);
});

test('no alert aggregates tether_queue_jobs with sum (every worker reports the same queue)', () => {
  for (const r of rules) assert.doesNotMatch(r.expr, /sum[^()]*\([^()]*tether_queue_jobs/, r.alert);
});

test('prometheus.yml scrapes the compose workers and loads alerts.yml', () => {
  const cfg = YAML.parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'));
  assert.deepEqual(cfg.rule_files, ['alerts.yml']);
  const job = cfg.scrape_configs.find((j: { job_name: string }) => j.job_name === 'tether');
  assert.ok(job, 'job "tether" (alerts select job="tether")');
  assert.equal(job.metrics_path ?? '/metrics', '/metrics');
  const targets = job.static_configs.flatMap((s: { targets: string[] }) => s.targets);
  const compose = YAML.parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });
  const workers = Object.keys(compose.services).filter((s) => /^tether-\d+$/.test(s));
  assert.deepEqual([...targets].sort(), workers.map((w) => `${w}:3000`).sort());
});

test('the Helm chart ships the same rules (helm/tether/files/alerts.yml)', () => {
  assert.equal(
    readFileSync(join(ROOT, 'helm/tether/files/alerts.yml'), 'utf8'),
    readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8'),
    'copy deploy/prometheus/alerts.yml to helm/tether/files/alerts.yml',
  );
});

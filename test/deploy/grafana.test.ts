/**
 * Grafana provisioning and the dashboard: valid JSON, the panels an operator needs, every query
 * uses a metric a worker exports, and the datasource uid matches the provisioned one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { metricNamesIn, exportedSeriesNames, PROMETHEUS_SYNTHETIC } from './promql-names.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboards/tether.json'), 'utf8'));
const panels: any[] = dash.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]).filter((p: any) => p.type !== 'row');
const exprs: { panel: string; expr: string }[] = panels.flatMap((p) => (p.targets ?? []).map((t: any) => ({ panel: p.title, expr: t.expr })));
const dsFile = YAML.parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8'));

test('dashboard has a uid, unique panel ids and non-overlapping layout', () => {
  assert.ok(dash.uid && dash.title);
  const ids = dash.panels.map((p: any) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  const cells = new Set<string>();
  for (const p of dash.panels) {
    const g = p.gridPos;
    assert.ok(g.x + g.w <= 24, `${p.title} overflows the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++) for (let y = g.y; y < g.y + g.h; y++) {
      const k = `${x},${y}`;
      assert.ok(!cells.has(k), `${p.title} overlaps another panel at ${k}`);
      cells.add(k);
    }
  }
});

test('dashboard covers what an operator watches', () => {
  const all = exprs.map((e) => e.expr).join('\n');
  for (const m of [
    'tether_connected_clients', 'tether_connections_total', 'tether_disconnections_total', 'tether_reconnections_total',
    'tether_event_fanout_seconds_bucket', 'tether_catchup_events_bucket', 'tether_grace_evictions_total', 'tether_queue_jobs',
    'tether_redis_command_seconds_bucket', 'nodejs_eventloop_lag_p99_seconds', 'process_resident_memory_bytes',
  ]) assert.ok(all.includes(m), `no panel queries ${m}`);
  assert.match(all, /sum by \(reason\) \(rate\(tether_disconnections_total/);
  assert.match(all, /sum by \(outcome\) \(rate\(tether_reconnections_total/);
});

test('every metric a dashboard query uses is exported by a worker', async () => {
  const exported = await exportedSeriesNames();
  const unknown: string[] = [];
  assert.ok(exprs.length > 20);
  for (const { panel, expr } of exprs) {
    assert.ok(expr && expr.trim(), `${panel}: empty query`);
    for (const n of metricNamesIn(expr)) if (!exported.has(n) && !PROMETHEUS_SYNTHETIC.has(n)) unknown.push(`${panel}: ${n}`);
  }
  const v = dash.templating.list.find((t: any) => t.name === 'instance');
  for (const n of metricNamesIn(v.definition.replace(/^label_values\((.*),\s*\w+\)$/, '$1'))) if (!exported.has(n)) unknown.push(`variable instance: ${n}`);
  assert.deepEqual(unknown, []);
});

test('panels and targets use the provisioned datasource uid', () => {
  const uid = dsFile.datasources[0].uid;
  for (const p of panels) {
    assert.equal(p.datasource?.uid, uid, `${p.title}`);
    for (const t of p.targets) assert.equal(t.datasource?.uid, uid, `${p.title} ${t.refId}`);
  }
});

test('provisioning files have the shape Grafana expects', () => {
  assert.equal(dsFile.apiVersion, 1);
  assert.equal(dsFile.datasources[0].type, 'prometheus');
  const prov = YAML.parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/tether.yml'), 'utf8'));
  assert.equal(prov.apiVersion, 1);
  assert.equal(prov.providers[0].type, 'file');
  assert.ok(prov.providers[0].options.path);
});

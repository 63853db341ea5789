/**
 * docs/OPERATIONS.md keeps up with the code: every metric declared in
 * src/observability/metrics.ts and every alert in deploy/prometheus/alerts.yml is documented.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { registry } from '../../src/observability/metrics.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const doc = readFileSync(join(ROOT, 'docs/OPERATIONS.md'), 'utf8');

test('every Tether metric is in the OPERATIONS.md metrics table with its type', async () => {
  const missing: string[] = [];
  for (const m of await registry.getMetricsAsJSON()) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${m.name}\``));
    if (!row) missing.push(m.name);
    else assert.ok(row.includes(`| ${m.type} |`), `${m.name}: documented type differs from ${m.type}`);
  }
  assert.deepEqual(missing, []);
});

test('every alert has a section in OPERATIONS.md', () => {
  const alerts = YAML.parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8'));
  const missing = alerts.groups.flatMap((g: any) => g.rules).map((r: any) => r.alert).filter((a: string) => !doc.includes(`### ${a} (`));
  assert.deepEqual(missing, []);
});

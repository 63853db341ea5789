/**
 * Metric names referenced by PromQL expressions, and the names a Tether worker actually exports.
 * Shared by the Prometheus and Grafana tests.
 */
import client from 'prom-client';
import { registry, collectDefaultMetrics } from '../../src/observability/metrics.ts';

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset',
  'bool', 'inf', 'nan', 'atan2',
]);

/**
 * Extracts the metric names an expression selects. A small lexer, not a parser: it drops string
 * literals, label matchers `{...}`, ranges/subqueries `[...]`, grouping clauses `by (...)` and
 * Grafana variables, then every identifier not followed by `(` (a function) is a metric name.
 */
export function metricNamesIn(expr: string): Set<string> {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\$\{?\w+(?::\w+)?\}?/g, ' ')
    .replace(/\{[^{}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ')
    .replace(/\b\d+(\.\d+)?(e[+-]?\d+)?\b/gi, ' ');
  const out = new Set<string>();
  for (const m of s.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    if (m[2]) continue;
    if (KEYWORDS.has(m[1]!.toLowerCase())) continue;
    out.add(m[1]!);
  }
  return out;
}

/** Series Prometheus itself adds to every scrape target. */
export const PROMETHEUS_SYNTHETIC = new Set([
  'up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_samples_post_metric_relabeling', 'scrape_series_added',
]);

let cached: Set<string> | undefined;
/**
 * Every series name a worker's /metrics can contain: the registry's metrics from
 * src/observability/metrics.ts plus prom-client's default metrics, histograms and summaries
 * expanded to their `_bucket`/`_sum`/`_count` series.
 */
export async function exportedSeriesNames(): Promise<Set<string>> {
  if (cached) return cached;
  collectDefaultMetrics();
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    const type = String(m.type);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    else if (type === 'summary') {
      names.add(m.name);
      for (const s of ['_sum', '_count']) names.add(m.name + s);
    } else names.add(m.name);
  }
  // Ensure the default set really was added (collectDefaultMetrics is a once-per-process latch).
  if (!names.has('process_cpu_seconds_total')) {
    const r = new client.Registry();
    client.collectDefaultMetrics({ register: r });
    for (const m of await r.getMetricsAsJSON()) names.add(m.name);
  }
  cached = names;
  return names;
}

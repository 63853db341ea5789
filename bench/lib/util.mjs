import { createHmac } from 'node:crypto';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function signJwt(claims, secret) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, iat: now, exp: now + 3600 })}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

/** Percentile of a sorted numeric array (nearest rank). */
export function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Percentile from a { ms: count } histogram. */
export function histPct(hist, p) {
  const keys = Object.keys(hist).map(Number).sort((a, b) => a - b);
  const total = keys.reduce((s, k) => s + hist[k], 0);
  if (!total) return null;
  const want = Math.ceil((p / 100) * total);
  let acc = 0;
  for (const k of keys) {
    acc += hist[k];
    if (acc >= want) return k;
  }
  return keys[keys.length - 1];
}

export function mergeHist(into, h) {
  for (const [k, v] of Object.entries(h)) into[k] = (into[k] ?? 0) + v;
  return into;
}

/** Every meter window (bench/lib/infra.mjs Meter.end) inside a result, wherever it sits. */
export function meterWindows(v, acc = []) {
  if (v && typeof v === 'object') {
    if (v.cpuSec && 'otherLoadPct' in v) acc.push(v);
    else for (const x of Object.values(v)) meterWindows(x, acc);
  }
  return acc;
}

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Median, min and max of the finite numbers in `xs` (nulls are runs where the figure was not reached). */
export function spread(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return { med: median(v), min: v.length ? Math.min(...v) : null, max: v.length ? Math.max(...v) : null, n: v.length, of: xs.length };
}

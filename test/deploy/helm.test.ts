/**
 * helm/tether without helm or a cluster: chart YAML parses, values.schema.json accepts
 * values.yaml (and rejects bad values), and the templates, rendered by helm-render.ts, give the
 * manifests a Tether deployment needs, wired to each other consistently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import YAML from 'yaml';
import { Chart, ChartFailure, manifests } from './helm-render.ts';
import { loadConfig } from '../../src/config/index.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DIR = join(ROOT, 'helm/tether');
const chart = new Chart(DIR);
const schema = JSON.parse(readFileSync(join(DIR, 'values.schema.json'), 'utf8'));
const EXTERNAL = { redis: { url: 'redis://redis.example.internal:6379' }, secrets: { jwtSecret: 'x'.repeat(32), serviceToken: 'y'.repeat(32) } };

// ---- a JSON-schema subset validator (type, enum, pattern, minLength, minimum, maximum,
// properties, required, additionalProperties, items) --------------------------------------------
function validate(s: any, v: unknown, path = '$'): string[] {
  const errs: string[] = [];
  const typeOf = (x: unknown) => (x === null ? 'null' : Array.isArray(x) ? 'array' : Number.isInteger(x) ? 'integer' : typeof x);
  if (s.type) {
    const types = [s.type].flat();
    const t = typeOf(v);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [`${path}: expected ${types.join('|')}, got ${t}`];
  }
  if (s.enum && !s.enum.includes(v)) errs.push(`${path}: ${JSON.stringify(v)} not in ${JSON.stringify(s.enum)}`);
  if (typeof v === 'string') {
    if (s.pattern && !new RegExp(s.pattern).test(v)) errs.push(`${path}: ${JSON.stringify(v)} does not match ${s.pattern}`);
    if (s.minLength !== undefined && v.length < s.minLength) errs.push(`${path}: shorter than ${s.minLength}`);
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) errs.push(`${path}: ${v} < ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) errs.push(`${path}: ${v} > ${s.maximum}`);
  }
  if (Array.isArray(v) && s.items) v.forEach((x, i) => errs.push(...validate(s.items, x, `${path}[${i}]`)));
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const r of s.required ?? []) if (!(r in v)) errs.push(`${path}: missing ${r}`);
    for (const [k, x] of Object.entries(v)) {
      if (s.properties?.[k]) errs.push(...validate(s.properties[k], x, `${path}.${k}`));
      else if (s.additionalProperties === false) errs.push(`${path}: unknown key ${k}`);
      else if (typeof s.additionalProperties === 'object') errs.push(...validate(s.additionalProperties, x, `${path}.${k}`));
    }
  }
  return errs;
}
const SUPPORTED = new Set(['$schema', 'title', 'description', 'type', 'enum', 'pattern', 'minLength', 'minimum', 'maximum', 'properties', 'required', 'additionalProperties', 'items']);
function keywordsUsed(s: any, acc = new Set<string>()): Set<string> {
  if (s && typeof s === 'object') {
    for (const [k, v] of Object.entries(s)) {
      if (k === 'properties') for (const sub of Object.values(v as object)) keywordsUsed(sub, acc);
      else {
        acc.add(k);
        if ((k === 'items' || k === 'additionalProperties') && typeof v === 'object') keywordsUsed(v, acc);
      }
    }
  }
  return acc;
}

test('chart YAML files parse', () => {
  const meta = YAML.parse(readFileSync(join(DIR, 'Chart.yaml'), 'utf8'));
  assert.equal(meta.apiVersion, 'v2');
  assert.equal(meta.name, 'tether');
  assert.match(meta.version, /^\d+\.\d+\.\d+/);
  assert.ok(!meta.dependencies, 'no chart dependencies (offline install)');
  YAML.parse(readFileSync(join(DIR, 'values.yaml'), 'utf8'));
  YAML.parse(readFileSync(join(DIR, 'files/alerts.yml'), 'utf8'));
  assert.ok(readdirSync(join(DIR, 'templates')).includes('NOTES.txt'));
});

test('every value in values.yaml is documented by a comment', () => {
  const lines = readFileSync(join(DIR, 'values.yaml'), 'utf8').split('\n');
  const undocumented: string[] = [];
  lines.forEach((l, i) => {
    const m = /^(\s*)([A-Za-z][\w]*):\s*(\S.*)?$/.exec(l);
    if (!m || !m[3] || m[3].startsWith('#')) return; // section headers (nested maps) are documented by their children
    const prev = lines[i - 1]?.trim() ?? '';
    if (!prev.startsWith('#')) undocumented.push(`${i + 1}: ${l.trim()}`);
  });
  assert.deepEqual(undocumented, []);
});

test('values.schema.json uses only the keywords the validator understands', () => {
  const unknown = [...keywordsUsed(schema)].filter((k) => !SUPPORTED.has(k));
  assert.deepEqual(unknown, []);
});

test('values.schema.json accepts values.yaml and rejects bad values', () => {
  assert.deepEqual(validate(schema, chart.values()), []);
  assert.deepEqual(validate(schema, chart.values(EXTERNAL)), []);
  const bad = (o: Record<string, unknown>) => validate(schema, chart.values(o));
  assert.match(bad({ replicaCount: 'three' }).join(), /replicaCount: expected integer/);
  assert.match(bad({ replicaz: 3 }).join(), /unknown key replicaz/);
  assert.match(bad({ redis: { url: 'http://x' } }).join(), /redis\.url/);
  assert.match(bad({ secrets: { jwtSecret: 'short' } }).join(), /jwtSecret/);
  assert.match(bad({ config: { WS_PING_INTERVAL: 25000 } }).join(), /WS_PING_INTERVAL: expected string/);
  assert.match(bad({ ingress: { affinity: 'ip' } }).join(), /affinity/);
});

test('values.schema.json agrees with ajv, when ajv is resolvable', async (t) => {
  let Ajv: any;
  try {
    Ajv = createRequire(import.meta.url)('ajv');
  } catch {
    return t.skip('ajv not resolvable (only a transitive dependency): the built-in validator above still ran');
  }
  const ajv = new (Ajv.default ?? Ajv)({ strict: false, allErrors: true });
  const check = ajv.compile(schema);
  assert.equal(check(chart.values()), true, JSON.stringify(check.errors));
  assert.equal(check(chart.values({ replicaCount: 'three' })), false);
});

function renderDocs(overrides: Record<string, unknown>) {
  return manifests(chart.render(overrides));
}
function one(docs: { doc: any }[], kind: string, name?: string) {
  const found = docs.filter((d) => d.doc.kind === kind && (!name || d.doc.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!.doc;
}

test('rendering with default values fails clearly: a Redis URL is required', () => {
  assert.throws(() => chart.render({}), (e: unknown) => e instanceof ChartFailure && /redis\.url is required/.test(e.message));
});

test('default render (external Redis): expected kinds, all valid YAML, names and labels consistent', () => {
  const docs = renderDocs(EXTERNAL);
  const kinds = docs.map((d) => d.doc.kind).sort();
  assert.deepEqual(kinds, ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'PodDisruptionBudget', 'Secret', 'Service']);
  for (const { doc } of docs) {
    assert.ok(doc.apiVersion && doc.metadata?.name, `${doc.kind} has apiVersion and metadata.name`);
    assert.match(doc.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  }
  const dep = one(docs, 'Deployment');
  const podLabels = dep.spec.template.metadata.labels;
  for (const [k, v] of Object.entries(dep.spec.selector.matchLabels)) assert.equal(podLabels[k], v, 'selector matches pod labels');
  const svc = one(docs, 'Service');
  for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(podLabels[k], v, 'service selects the pods');
  const c = dep.spec.template.spec.containers[0];
  assert.equal(svc.spec.ports[0].targetPort, c.ports[0].name);
  assert.equal(c.ports[0].containerPort, 3000);
  const ing = one(docs, 'Ingress');
  for (const p of ing.spec.rules[0].http.paths) {
    assert.equal(p.backend.service.name, svc.metadata.name);
    assert.equal(p.backend.service.port.name, svc.spec.ports[0].name);
  }
  assert.ok(ing.spec.rules[0].http.paths.some((p: any) => p.path === '/socket.io/'));
  const hpa = one(docs, 'HorizontalPodAutoscaler');
  assert.equal(hpa.spec.scaleTargetRef.name, dep.metadata.name);
  assert.equal(dep.spec.replicas, undefined, 'replicas left to the HPA');
  const pdb = one(docs, 'PodDisruptionBudget');
  assert.deepEqual(pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels);
  const cm = one(docs, 'ConfigMap');
  for (const [k, v] of Object.entries(cm.data)) assert.equal(typeof v, 'string', `ConfigMap ${k} must be a string`);
  assert.equal(cm.data.HOST, '0.0.0.0');
  // The ConfigMap is a valid Tether configuration.
  loadConfig({ ...cm.data, REDIS_URL: 'redis://x:6379' });
});

test('deployment: probes, drain timing, security, spreading, checksums', () => {
  const docs = renderDocs(EXTERNAL);
  const dep = one(docs, 'Deployment');
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.startupProbe.httpGet.path, '/healthz');
  const cm = one(docs, 'ConfigMap');
  const sleep = Number(c.lifecycle.preStop.exec.command.at(-1));
  assert.ok(sleep > 0, 'preStop sleeps');
  assert.ok(pod.terminationGracePeriodSeconds > sleep + Number(cm.data.SHUTDOWN_TIMEOUT_MS) / 1000, 'grace period outlasts preStop + drain');
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.ok(c.resources.requests.cpu && c.resources.limits.memory);
  assert.ok(pod.topologySpreadConstraints.length >= 1);
  for (const tsc of pod.topologySpreadConstraints) assert.deepEqual(tsc.labelSelector.matchLabels, dep.spec.selector.matchLabels);
  const env = Object.fromEntries(c.env.map((e: any) => [e.name, e]));
  assert.equal(env.NODE_ID.valueFrom.fieldRef.fieldPath, 'metadata.name');
  const secret = one(docs, 'Secret');
  assert.equal(env.REDIS_URL.valueFrom.secretKeyRef.name, secret.metadata.name);
  for (const k of ['REDIS_URL', 'JWT_SECRET', 'SERVICE_TOKEN']) assert.ok(secret.data[k], `Secret has ${k}`);
  assert.equal(Buffer.from(secret.data.REDIS_URL, 'base64').toString(), EXTERNAL.redis.url);
  const ann = dep.spec.template.metadata.annotations;
  assert.match(ann['checksum/config'], /^[0-9a-f]{64}$/);
  const changed = one(renderDocs({ ...EXTERNAL, config: { LOG_LEVEL: 'debug' } }), 'Deployment');
  assert.notEqual(changed.spec.template.metadata.annotations['checksum/config'], ann['checksum/config'], 'config change rolls pods');
  assert.equal(changed.spec.template.metadata.annotations['checksum/secret'], ann['checksum/secret']);
});

test('the chart refuses a grace period shorter than preStop + drain', () => {
  assert.throws(() => chart.render({ ...EXTERNAL, terminationGracePeriodSeconds: 20 }), (e: unknown) => e instanceof ChartFailure && /terminationGracePeriodSeconds/.test(e.message));
});

test('ingress: cookie affinity for long-polling and timeouts beyond the ping window', () => {
  const ing = one(renderDocs(EXTERNAL), 'Ingress');
  const a = ing.metadata.annotations;
  const cfg = loadConfig({});
  assert.equal(a['nginx.ingress.kubernetes.io/affinity'], 'cookie');
  assert.equal(a['nginx.ingress.kubernetes.io/affinity-mode'], 'persistent');
  assert.ok(a['nginx.ingress.kubernetes.io/session-cookie-name']);
  for (const k of ['proxy-read-timeout', 'proxy-send-timeout']) {
    assert.ok(Number(a[`nginx.ingress.kubernetes.io/${k}`]) > (cfg.ws.pingInterval + cfg.ws.pingTimeout) / 1000, k);
  }
  const none = one(renderDocs({ ...EXTERNAL, ingress: { affinity: 'none' } }), 'Ingress');
  assert.equal(none.metadata.annotations['nginx.ingress.kubernetes.io/affinity'], undefined);
});

test('optional parts: bundled Redis, ServiceMonitor, PrometheusRule, custom-metric HPA, existing secret, no HPA', () => {
  const docs = renderDocs({
    redis: { bundled: { enabled: true } },
    secrets: { existingSecret: 'tether-secrets' },
    serviceMonitor: { enabled: true, labels: { release: 'kps' } },
    prometheusRule: { enabled: true },
    autoscaling: { connectedClients: { enabled: true } },
  });
  assert.equal(docs.filter((d) => d.doc.kind === 'Secret').length, 0, 'no Secret with existingSecret');
  const sts = one(docs, 'StatefulSet');
  const redisSvc = one(docs, 'Service', 'tether-redis');
  for (const [k, v] of Object.entries(redisSvc.spec.selector)) assert.equal(sts.spec.template.metadata.labels[k], v);
  assert.ok(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage);
  assert.ok(sts.spec.template.spec.containers[0].args.includes('--appendonly'));
  const dep = one(docs, 'Deployment');
  const env = Object.fromEntries(dep.spec.template.spec.containers[0].env.map((e: any) => [e.name, e]));
  assert.equal(env.REDIS_URL.value, 'redis://tether-redis:6379');
  assert.equal(env.JWT_SECRET.valueFrom.secretKeyRef.name, 'tether-secrets');
  const sm = one(docs, 'ServiceMonitor');
  assert.equal(sm.metadata.labels.release, 'kps');
  assert.equal(sm.spec.endpoints[0].path, '/metrics');
  const workerSvc = one(docs, 'Service', 'tether');
  for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) {
    assert.equal(workerSvc.metadata.labels[k], v, 'ServiceMonitor selects the worker Service');
  }
  assert.ok(Object.entries(sm.spec.selector.matchLabels).some(([k, v]) => redisSvc.metadata.labels[k] !== v), 'ServiceMonitor must not select the Redis Service');
  assert.equal(workerSvc.metadata.labels[sm.spec.jobLabel], 'tether', 'job="tether" as the alert rules expect');
  const rule = one(docs, 'PrometheusRule');
  const alerts = YAML.parse(readFileSync(join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8'));
  assert.deepEqual(rule.spec.groups, alerts.groups);
  const hpa = one(docs, 'HorizontalPodAutoscaler');
  assert.ok(hpa.spec.metrics.some((m: any) => m.type === 'Pods' && m.pods.metric.name === 'tether_connected_clients'));

  const fixed = renderDocs({ ...EXTERNAL, autoscaling: { enabled: false }, pdb: { enabled: false }, ingress: { enabled: false } });
  assert.equal(one(fixed, 'Deployment').spec.replicas, 3);
  assert.deepEqual(fixed.map((d) => d.doc.kind).sort(), ['ConfigMap', 'Deployment', 'Secret', 'Service']);
});

test('redis.mode: cluster and sentinel render a configuration Tether accepts; the chart refuses what cannot work', () => {
  const env = (docs: ReturnType<typeof renderDocs>) => {
    const c = one(docs, 'Deployment').spec.template.spec.containers[0];
    return Object.fromEntries(c.env.map((e: any) => [e.name, e]));
  };
  const secrets = { jwtSecret: 'x'.repeat(32), serviceToken: 'y'.repeat(32) };

  const cluster = renderDocs({ secrets, redis: { mode: 'cluster', clusterNodes: 'redis-0.redis:6379,redis-1.redis:6379', password: 'pw' } });
  const cm = one(cluster, 'ConfigMap').data;
  assert.equal(cm.REDIS_MODE, 'cluster');
  assert.equal(cm.REDIS_CLUSTER_NODES, 'redis-0.redis:6379,redis-1.redis:6379');
  assert.equal(env(cluster).REDIS_URL, undefined, 'no REDIS_URL next to REDIS_MODE=cluster');
  assert.equal(env(cluster).REDIS_PASSWORD.valueFrom.secretKeyRef.key, 'REDIS_PASSWORD');
  const secret = one(cluster, 'Secret').data;
  assert.equal(Buffer.from(secret.REDIS_PASSWORD, 'base64').toString(), 'pw');
  assert.equal(secret.REDIS_URL, undefined);
  const c = loadConfig({ ...cm, REDIS_PASSWORD: 'pw' });
  assert.deepEqual([c.redis.mode, c.redis.clusterNodes.length, c.redis.queuePartitions], ['cluster', 2, 8]);

  const sentinel = renderDocs({ secrets, redis: { mode: 'sentinel', sentinel: { nodes: 's0:26379,s1:26379,s2:26379', name: 'tether', password: 'spw' }, waitReplicas: 1 } });
  const scm = one(sentinel, 'ConfigMap').data;
  assert.equal(scm.REDIS_SENTINELS, 's0:26379,s1:26379,s2:26379');
  assert.equal(scm.REDIS_SENTINEL_NAME, 'tether');
  assert.equal(scm.REDIS_WAIT_REPLICAS, '1');
  assert.equal(Buffer.from(one(sentinel, 'Secret').data.REDIS_SENTINEL_PASSWORD, 'base64').toString(), 'spw');
  const s = loadConfig({ ...scm, REDIS_SENTINEL_PASSWORD: 'spw' });
  assert.deepEqual([s.redis.mode, s.redis.sentinels.length, s.redis.sentinelName, s.redis.waitReplicas], ['sentinel', 3, 'tether', 1]);

  // The standalone default still renders REDIS_URL and no mode-specific variables.
  const standalone = one(renderDocs(EXTERNAL), 'ConfigMap').data;
  assert.equal(standalone.REDIS_MODE, 'standalone');
  assert.equal(standalone.REDIS_CLUSTER_NODES, undefined);
  assert.equal(loadConfig({ ...standalone, REDIS_URL: EXTERNAL.redis.url }).redis.mode, 'standalone');

  assert.throws(() => chart.render({ secrets, redis: { mode: 'cluster' } }), (e: unknown) => e instanceof ChartFailure && /redis.clusterNodes/.test(e.message));
  assert.throws(() => chart.render({ secrets, redis: { mode: 'sentinel' } }), (e: unknown) => e instanceof ChartFailure && /redis.sentinel.nodes/.test(e.message));
  assert.throws(() => chart.render({ secrets, redis: { mode: 'cluster', clusterNodes: 'a:1', bundled: { enabled: true } } }), (e: unknown) => e instanceof ChartFailure && /bundled/.test(e.message));
  assert.match(validate(schema, chart.values({ redis: { mode: 'replicated' } })).join(), /redis\.mode/, 'schema rejects an unknown mode');
  assert.match(validate(schema, chart.values({ redis: { clusterNodes: 'redis-0' } })).join(), /redis\.clusterNodes/, 'schema rejects a node without a port');
});

test('NOTES.txt renders', () => {
  const notes = chart.render(EXTERNAL).get('NOTES.txt')!;
  assert.match(notes, /tether\.example\.com/);
  assert.doesNotMatch(notes, /\{\{|<no value>/);
});

test('helm-render rejects what it does not support instead of rendering it wrongly', () => {
  const c = new Chart(DIR);
  // private API reached on purpose: a template using an unknown function must throw.
  assert.throws(() => (c as any).evalPipeline(['lookup', '"v1"'], { dot: {}, vars: new Map() }), /not supported/);
  assert.throws(() => (c as any).evalPipeline(['.Values.missing.key'], { dot: { Values: {} }, vars: new Map() }), /nil pointer/);
});

/**
 * docker-compose.yml, Dockerfile and .dockerignore, checked statically (no Docker daemon or
 * network here): the stack has what it must, everything it mounts or builds from exists, and the
 * files it mounts are the ones the nginx/Prometheus/Grafana tests validate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import YAML from 'yaml';

const ROOT = new URL('../..', import.meta.url).pathname;
const compose = YAML.parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, any>;
  volumes?: Record<string, unknown>;
};
const services = compose.services;
const workers = Object.keys(services).filter((s) => /^tether-\d+$/.test(s));

/** Short-syntax volume "src:dst[:mode]" → bind mounts only (sources starting with . or /). */
function binds(svc: any): { src: string; dst: string }[] {
  return (svc.volumes ?? [])
    .map((v: string | { type: string; source: string; target: string }) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]))
    .filter(([src]: string[]) => src!.startsWith('.') || src!.startsWith('/'))
    .map(([src, dst]: string[]) => ({ src: src!, dst: dst! }));
}
function mountOf(service: string, dst: string): string {
  const m = binds(services[service]).find((b) => b.dst === dst);
  assert.ok(m, `${service} mounts nothing at ${dst}`);
  return resolve(ROOT, m.src);
}

test('compose has redis, three workers, nginx, prometheus and grafana', () => {
  for (const s of ['redis', 'nginx', 'prometheus', 'grafana']) assert.ok(services[s], `service ${s}`);
  assert.deepEqual(workers, ['tether-1', 'tether-2', 'tether-3']);
});

test('redis persists with AOF on a named volume', () => {
  const r = services.redis;
  assert.match(String(r.image), /^redis:7/);
  const cmd = [r.command].flat().join(' ');
  assert.match(cmd, /--appendonly yes/);
  const vol = (r.volumes as string[]).find((v) => v.endsWith(':/data'));
  assert.ok(vol, 'redis /data volume');
  assert.ok(compose.volumes && vol.split(':')[0]! in compose.volumes, 'redis volume declared at top level');
  assert.ok(r.healthcheck?.test, 'redis healthcheck');
});

test('workers: built from the Dockerfile, distinct NODE_IDs, shared secrets, Redis, drain-friendly stop', () => {
  const ids = new Set<string>();
  for (const w of workers) {
    const s = services[w];
    assert.ok(s.build, `${w} builds the image`);
    const ctx = resolve(ROOT, s.build.context ?? s.build);
    assert.ok(existsSync(ctx), `${w} build context ${ctx}`);
    assert.ok(existsSync(join(ctx, s.build.dockerfile ?? 'Dockerfile')), `${w} Dockerfile`);
    const env = s.environment;
    assert.equal(env.NODE_ID, w);
    ids.add(env.NODE_ID);
    assert.equal(env.HOST, '0.0.0.0', 'containers must listen on all interfaces');
    assert.match(interpolate(env.REDIS_URL, {}), /^redis:\/\/redis:6379/);
    assert.ok(env.JWT_SECRET && env.SERVICE_TOKEN);
    assert.equal(s.depends_on?.redis?.condition, 'service_healthy');
    assert.ok(s.healthcheck?.test.join(' ').includes('/healthz'));
    const grace = Number(String(s.stop_grace_period).replace(/s$/, ''));
    const shutdownMs = Number(env.SHUTDOWN_TIMEOUT_MS ?? 25000);
    assert.ok(grace * 1000 > shutdownMs, `stop_grace_period ${grace}s must exceed SHUTDOWN_TIMEOUT_MS ${shutdownMs}`);
    assert.ok(!s.ports, `${w} should not publish ports: traffic goes through nginx`);
  }
  assert.equal(ids.size, workers.length);
});

/** Compose variable substitution: ${VAR:-default} (unset or empty), ${VAR-default} (unset). */
function interpolate(value: unknown, env: Record<string, string>): string {
  return String(value).replace(/\$\{(\w+)(:?-)([^}]*)\}/g, (_, name: string, op: string, dflt: string) => {
    const v = env[name];
    return v === undefined || (op === ':-' && v === '') ? dflt : v;
  });
}

test('workers follow REDIS_MODE from the shell: standalone by default, a Redis Cluster or Sentinel when exported', async () => {
  const { loadConfig } = await import('../../src/config/index.ts');
  const workerEnv = (shell: Record<string, string>) =>
    Object.fromEntries(Object.entries(services['tether-1'].environment).map(([k, v]) => [k, interpolate(v, shell)]));
  const standalone = loadConfig(workerEnv({}));
  assert.equal(standalone.redis.mode, 'standalone');
  assert.equal(standalone.redis.url, 'redis://redis:6379');
  const cluster = loadConfig(workerEnv({ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: '10.0.0.5:6379,10.0.0.6:6379', REDIS_URL: '' }));
  assert.deepEqual([cluster.redis.mode, cluster.redis.clusterNodes.length, cluster.redis.url], ['cluster', 2, undefined]);
  const sentinel = loadConfig(workerEnv({ REDIS_MODE: 'sentinel', REDIS_SENTINELS: 'a:26379,b:26379,c:26379', REDIS_URL: '', REDIS_WAIT_REPLICAS: '1' }));
  assert.deepEqual([sentinel.redis.mode, sentinel.redis.sentinels.length, sentinel.redis.waitReplicas], ['sentinel', 3, 1]);
  // Forgetting the empty REDIS_URL is reported, not silently ignored.
  assert.throws(() => loadConfig(workerEnv({ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: 'a:1' })), /REDIS_URL: not used with REDIS_MODE=cluster/);
});

test('nginx mounts the shipped nginx/tether.conf and waits for healthy workers', () => {
  assert.equal(mountOf('nginx', '/etc/nginx/nginx.conf'), join(ROOT, 'nginx/tether.conf'));
  for (const w of workers) assert.equal(services.nginx.depends_on?.[w]?.condition, 'service_healthy');
  const conf = readFileSync(join(ROOT, 'nginx/tether.conf'), 'utf8');
  const listen = /^\s*listen\s+(\S+)/m.exec(conf)![1]!.replace(/^.*:/, '');
  assert.ok((services.nginx.ports as string[]).some((p) => p.endsWith(`:${listen}`)), `nginx publishes its listen port ${listen}`);
  for (const w of workers) assert.match(conf, new RegExp(`server ${w}:3000 `));
});

test('prometheus mounts the validated config and rules where the config expects them', () => {
  const cfgPath = mountOf('prometheus', '/etc/prometheus/prometheus.yml');
  assert.equal(cfgPath, join(ROOT, 'deploy/prometheus/prometheus.yml'));
  const cfg = YAML.parse(readFileSync(cfgPath, 'utf8'));
  for (const rf of cfg.rule_files as string[]) {
    assert.equal(mountOf('prometheus', `/etc/prometheus/${rf}`), join(ROOT, 'deploy/prometheus', rf));
  }
  assert.ok([services.prometheus.command].flat().includes('--config.file=/etc/prometheus/prometheus.yml'));
});

test('grafana mounts provisioning and the dashboard at the path the provider reads', () => {
  assert.equal(mountOf('grafana', '/etc/grafana/provisioning'), join(ROOT, 'deploy/grafana/provisioning'));
  const provider = YAML.parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/tether.yml'), 'utf8'));
  const path = provider.providers[0].options.path;
  assert.equal(mountOf('grafana', path), join(ROOT, 'deploy/grafana/dashboards'));
  assert.ok(existsSync(join(ROOT, 'deploy/grafana/dashboards/tether.json')));
  const ds = YAML.parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8'));
  assert.equal(ds.datasources[0].url, 'http://prometheus:9090');
});

test('every bind mount and build source in compose exists', () => {
  for (const [name, s] of Object.entries(services)) {
    for (const b of binds(s)) assert.ok(existsSync(resolve(ROOT, b.src)), `${name}: ${b.src} does not exist`);
  }
});

// ---- Dockerfile -------------------------------------------------------------------------------

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const instructions = dockerfile
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => {
    const sp = l.indexOf(' ');
    return { op: l.slice(0, sp).toUpperCase(), arg: l.slice(sp + 1).trim() };
  });
const stages: { name: string; ins: typeof instructions }[] = [];
for (const i of instructions) {
  if (i.op === 'FROM') stages.push({ name: /\bAS\s+(\S+)/i.exec(i.arg)?.[1] ?? '', ins: [] });
  else stages.at(-1)?.ins.push(i);
}

test('Dockerfile: multi-stage build, production deps only at runtime', () => {
  assert.ok(stages.length >= 2, 'multi-stage');
  const build = stages.find((s) => s.ins.some((i) => i.op === 'RUN' && /npm run build/.test(i.arg)));
  assert.ok(build, 'a stage runs npm run build');
  assert.ok(build.ins.some((i) => i.op === 'RUN' && /npm ci\b/.test(i.arg)), 'build stage uses npm ci');
  const runtime = stages.at(-1)!;
  assert.ok(!runtime.ins.some((i) => i.op === 'RUN' && /npm (ci|install)(?!.*--omit=dev)/.test(i.arg)), 'no dev install in runtime');
  const prod = stages.find((s) => s.ins.some((i) => i.op === 'RUN' && /npm ci .*--omit=dev/.test(i.arg)));
  assert.ok(prod, 'a stage installs --omit=dev');
  // npm run build runs `node scripts/...` (see package.json): those files must be in the stage.
  const buildScript = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts?.build ?? '';
  const buildCopies = build.ins.filter((i) => i.op === 'COPY').map((i) => i.arg.split(/\s+/)[0]!.replace(/^\.\//, ''));
  for (const m of buildScript.matchAll(/(?:node|tsc -p)\s+(\S+)/g)) {
    const needed = m[1]!.replace(/^\.\//, '');
    assert.ok(buildCopies.some((c) => needed === c || needed.startsWith(`${c.replace(/\/$/, '')}/`)), `build script needs ${needed}, not copied into the build stage`);
  }
  const copies = runtime.ins.filter((i) => i.op === 'COPY').map((i) => i.arg);
  assert.ok(copies.some((c) => c.includes(`--from=${prod.name}`) && c.includes('node_modules')), 'runtime node_modules from the prod-deps stage');
  assert.ok(copies.some((c) => c.includes(`--from=${build.name}`) && c.includes('dist')), 'runtime dist from the build stage');
});

test('Dockerfile: runtime is non-root, listens on 0.0.0.0:3000, health-checked, drains on SIGTERM', () => {
  const rt = stages.at(-1)!.ins;
  const get = (op: string) => rt.filter((i) => i.op === op).map((i) => i.arg);
  const user = get('USER').at(-1);
  assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${user}`);
  assert.match(user!, /^\d+(:\d+)?$/, 'numeric USER so runAsNonRoot can verify it');
  assert.ok(get('ENV').some((e) => /HOST=0\.0\.0\.0/.test(e)));
  assert.deepEqual(get('EXPOSE'), ['3000']);
  assert.deepEqual(get('STOPSIGNAL'), ['SIGTERM']);
  const hc = get('HEALTHCHECK').join(' ');
  assert.match(hc, /CMD .*node.*fetch\(.*\/healthz/);
  assert.deepEqual(JSON.parse(get('CMD').at(-1)!), ['node', 'dist/main.js']);
});

test('Dockerfile: every COPY source from the context exists and is not .dockerignored', () => {
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const need of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(need), `.dockerignore should exclude ${need}`);
  for (const s of stages) {
    for (const i of s.ins.filter((x) => x.op === 'COPY' && !x.arg.includes('--from='))) {
      const parts = i.arg.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(join(ROOT, src)), `COPY ${src}: missing in the build context`);
        assert.ok(!ignored.includes(src), `COPY ${src} but .dockerignore excludes it`);
      }
    }
  }
});

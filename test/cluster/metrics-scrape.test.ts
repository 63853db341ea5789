/**
 * Every metric the Grafana dashboard and the alert rules query is one a running worker exports:
 * scraped from a real worker's /metrics after some traffic, not read from the registry object.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorker, type Worker } from '../helpers/workers.ts';
import { closeAll, connect, createRoomHttp, ok } from '../helpers/clients.ts';
import { metricNamesIn, PROMETHEUS_SYNTHETIC } from '../deploy/promql-names.ts';

const ROOT = new URL('../../', import.meta.url);
let redis: TestRedis;
let worker: Worker;

before(async () => {
  redis = await startRedis();
  worker = await startWorker({ redisUrl: redis.url, prefix: redis.prefix });
});
after(async () => {
  closeAll();
  await worker?.kill('SIGKILL');
  await redis?.stop();
});

/** Series names in a Prometheus text exposition: declared ones (# TYPE), histograms expanded. */
function scrapedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    const [, name, type] = m;
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name! + s);
    else if (type === 'summary') for (const s of ['', '_sum', '_count']) names.add(name! + s);
    else names.add(name!);
  }
  for (const m of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) names.add(m[1]!);
  return names;
}

test('the dashboard and the alerts only query metrics a live worker exports', async () => {
  // A little traffic so that labelled series exist too.
  const room = await createRoomHttp(worker.url);
  const c = await connect(worker.url);
  await ok(c.socket, 'room:join', { roomCode: room.code, guestName: 'm' });
  await ok(c.socket, 'room:publish', { type: 't', data: 1, clientMsgId: 'x' });
  const text = await (await fetch(`${worker.url}/metrics`)).text();
  const exported = scrapedNames(text);
  assert.ok(exported.has('tether_connected_clients') && exported.has('nodejs_eventloop_lag_p99_seconds'));

  const dashboard = JSON.parse(readFileSync(new URL('deploy/grafana/dashboards/tether.json', ROOT), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  const alerts = YAML.parse(readFileSync(new URL('deploy/prometheus/alerts.yml', ROOT), 'utf8')) as { groups: { rules: { alert?: string; expr: string }[] }[] };
  const queries = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel ${p.title}`, expr: t.expr }))),
    ...alerts.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
  ];
  assert.ok(queries.length > 30);
  const missing = queries.flatMap(({ where, expr }) => [...metricNamesIn(expr)].filter((n) => !exported.has(n) && !PROMETHEUS_SYNTHETIC.has(n)).map((n) => `${where}: ${n}`));
  assert.deepEqual(missing, []);
});

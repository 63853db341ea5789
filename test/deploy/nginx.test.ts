/**
 * nginx/tether.conf is the rendering of nginx/tether.conf.template with the production
 * parameters; here the same template is rendered for loopback, checked with `nginx -t`, and then
 * run for real in front of three stub workers to prove the behaviour the server relies on:
 * stickiness for long-polling (and the polling -> websocket upgrade), websocket upgrade headers,
 * X-Forwarded-For, failover off a draining (503) or dead worker, and the limits.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, type Server, type IncomingMessage } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, WebSocket } from 'ws';
import { loadConfig } from '../../src/config/index.ts';
// @ts-expect-error plain .mjs without types
import { render, PRODUCTION } from '../../nginx/render.mjs';

const ROOT = new URL('../..', import.meta.url).pathname;
const NGINX = '/usr/sbin/nginx';
const HAVE_NGINX = existsSync(NGINX);
const SKIP_MSG = 'nginx not installed: apt-get install nginx';

/** Parses `name value;` directives (flat: good enough to look up a directive by name). */
function directives(conf: string, name: string): string[] {
  const re = new RegExp(`^\\s*${name}\\s+([^;]*);`, 'gm');
  return [...conf.replace(/#.*$/gm, '').matchAll(re)].map((m) => m[1]!.trim());
}
function seconds(v: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(v);
  assert.ok(m, `unparsable duration ${v}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n;
}
function bytes(v: string): number {
  const m = /^(\d+)([kKmMgG])?$/.exec(v);
  assert.ok(m, `unparsable size ${v}`);
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? '').toLowerCase() as 'k'] ?? 1;
  return Number(m[1]) * mult;
}

test('nginx/tether.conf is exactly the template rendered with the production parameters', () => {
  const shipped = readFileSync(join(ROOT, 'nginx/tether.conf'), 'utf8');
  assert.equal(shipped, render(PRODUCTION), 'nginx/tether.conf is stale: run `node nginx/render.mjs --production > nginx/tether.conf`');
  for (const u of PRODUCTION.upstreams) assert.match(shipped, new RegExp(`server ${u} max_fails=\\d+ fail_timeout=\\d+s;`));
});

test('renderer refuses input that would inject nginx syntax', () => {
  assert.throws(() => render({ upstreams: ['127.0.0.1:1; include /etc/passwd'], listen: '1', prefix: '/tmp' }), /unsafe upstream/);
  assert.throws(() => render({ upstreams: [], listen: '1', prefix: '/tmp' }), /at least one upstream/);
});

test('timeouts and body size fit the server defaults', () => {
  const conf = render(PRODUCTION);
  const cfg = loadConfig({});
  const pingWindow = (cfg.ws.pingInterval + cfg.ws.pingTimeout) / 1000;
  const read = directives(conf, 'proxy_read_timeout').map(seconds);
  const send = directives(conf, 'proxy_send_timeout').map(seconds);
  // The /socket.io/ location carries the longest timeouts: they must outlast a ping round.
  assert.ok(Math.max(...read) > pingWindow, `proxy_read_timeout ${Math.max(...read)}s <= ping window ${pingWindow}s`);
  assert.ok(Math.max(...send) > pingWindow, `proxy_send_timeout ${Math.max(...send)}s <= ping window ${pingWindow}s`);
  const sio = conf.slice(conf.indexOf('location /socket.io/'));
  assert.ok(seconds(directives(sio, 'proxy_read_timeout')[0]!) > pingWindow);
  const body = bytes(directives(conf, 'client_max_body_size')[0]!);
  assert.ok(body >= cfg.ws.maxPayloadBytes, `client_max_body_size ${body} < MAX_PAYLOAD_BYTES ${cfg.ws.maxPayloadBytes}`);
  assert.match(conf, /map \$http_upgrade \$connection_upgrade/);
  assert.match(conf, /hash \$tether_affinity_key consistent;/);
  assert.match(conf, /proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/);
});

// ---- live: nginx in front of three stub workers on loopback --------------------------------

interface Stub { name: string; server: Server; port: number; draining: boolean }
const stubs: Stub[] = [];
let nginx: ChildProcess | undefined;
let prefix = '';
let base = '';

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

function startStub(name: string): Promise<Stub> {
  const stub = { name, port: 0, draining: false } as Stub;
  const wss = new WebSocketServer({ noServer: true });
  const describe = (req: IncomingMessage) => ({
    worker: name,
    url: req.url,
    xff: req.headers['x-forwarded-for'] ?? null,
    realIp: req.headers['x-real-ip'] ?? null,
    host: req.headers.host ?? null,
  });
  stub.server = createServer((req, res) => {
    const isHandshake = req.url?.startsWith('/socket.io/') && !/[?&]sid=/.test(req.url);
    if (stub.draining && isHandshake) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('draining');
      return;
    }
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(describe(req)));
    });
  });
  stub.server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ ...describe(req), upgrade: req.headers.upgrade, connection: req.headers.connection }));
    });
  });
  stub.server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => {
    stub.server.listen(0, '127.0.0.1', () => {
      stub.port = (stub.server.address() as AddressInfo).port;
      resolve(stub);
    });
  });
}

async function waitForNginx(url: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not listening yet */
    }
    if (nginx?.exitCode !== null && nginx?.exitCode !== undefined) throw new Error(`nginx exited ${nginx.exitCode}: ${readFileSync(join(prefix, 'error.log'), 'utf8')}`);
    if (Date.now() > deadline) throw new Error('nginx did not come up within 5 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function getJson(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(base + path, { headers });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not json */
  }
  return { status: r.status, body };
}

before(async () => {
  if (!HAVE_NGINX) return;
  for (const n of ['w1', 'w2', 'w3']) stubs.push(await startStub(n));
  prefix = mkdtempSync(join(tmpdir(), 'tether-nginx-'));
  // When the tests run as root nginx workers drop to `nobody`: let them use the prefix.
  chmodSync(prefix, 0o777);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const conf = render({ upstreams: stubs.map((s) => `127.0.0.1:${s.port}`), listen: `127.0.0.1:${port}`, prefix, failTimeout: '30s', maxFails: 1 });
  writeFileSync(join(prefix, 'nginx.conf'), conf);
  nginx = spawn(NGINX, ['-c', join(prefix, 'nginx.conf'), '-p', prefix, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForNginx(`${base}/nginx-health`);
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx!.once('exit', r));
    nginx.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (nginx.exitCode === null) nginx.kill('SIGKILL');
  }
  for (const s of stubs) {
    s.server.closeAllConnections();
    await new Promise((r) => s.server.close(r));
  }
  if (prefix) rmSync(prefix, { recursive: true, force: true });
});

test('nginx -t accepts the rendered config', { skip: !HAVE_NGINX && SKIP_MSG }, () => {
  const r = spawnSync(NGINX, ['-t', '-c', join(prefix, 'nginx.conf'), '-p', prefix], { encoding: 'utf8', timeout: 5000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /test is successful/);
});

test('proxy basics: /healthz passes through with forwarding headers, /metrics is closed, the demo page is proxied, unknown paths 404', { skip: !HAVE_NGINX && SKIP_MSG }, async () => {
  const h = await getJson('/healthz', { 'x-forwarded-for': '203.0.113.7' });
  assert.equal(h.status, 200);
  assert.ok(['w1', 'w2', 'w3'].includes(h.body.worker));
  assert.equal(h.body.xff, '203.0.113.7, 127.0.0.1');
  assert.equal(h.body.realIp, '127.0.0.1');
  assert.equal((await getJson('/metrics')).status, 403);
  assert.equal((await getJson('/nope')).status, 404);
  // The demo page and its assets go to the workers; anything else at the root stays nginx's 404.
  const page = await getJson('/?room=ABCDEFGH');
  assert.equal(page.status, 200);
  assert.equal(page.body.url, '/?room=ABCDEFGH');
  const asset = await getJson('/assets/tether-client.min.js');
  assert.equal(asset.status, 200);
  assert.equal(asset.body.url, '/assets/tether-client.min.js');
  const openapi = await getJson('/openapi.json');
  assert.equal(openapi.status, 200, 'the OpenAPI document is proxied');
  assert.equal(openapi.body.url, '/openapi.json');
  assert.equal((await getJson('/index.html')).status, 404);
});

test('long-polling is sticky per clientId, and keys spread over the workers', { skip: !HAVE_NGINX && SKIP_MSG }, async () => {
  const owners = new Map<string, string>();
  for (let i = 0; i < 30; i++) {
    const id = `client-${i}-aaaaaaaa`;
    const first = await getJson(`/socket.io/?EIO=4&transport=polling&clientId=${id}`);
    assert.equal(first.status, 200);
    for (let j = 0; j < 3; j++) {
      const again = await getJson(`/socket.io/?EIO=4&transport=polling&sid=s${j}&clientId=${id}`);
      assert.equal(again.body.worker, first.body.worker, `clientId ${id} moved from ${first.body.worker} to ${again.body.worker}`);
    }
    owners.set(id, first.body.worker);
  }
  assert.ok(new Set(owners.values()).size >= 2, 'all 30 clientIds hashed to one worker');
  // Without a clientId the address is the key: the same client keeps its worker.
  const a = await getJson('/socket.io/?EIO=4&transport=polling');
  const b = await getJson('/socket.io/?EIO=4&transport=polling&sid=x');
  assert.equal(a.body.worker, b.body.worker);
});

test('websocket upgrade passes Upgrade/Connection through and lands on the polling worker', { skip: !HAVE_NGINX && SKIP_MSG }, async () => {
  const id = 'upgrade-client-0001';
  const polling = await getJson(`/socket.io/?EIO=4&transport=polling&clientId=${id}`);
  const ws = new WebSocket(`${base.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket&sid=abc&clientId=${id}`);
  const msg = await new Promise<any>((resolve, reject) => {
    ws.once('message', (d) => resolve(JSON.parse(String(d))));
    ws.once('error', reject);
    setTimeout(() => reject(new Error('no websocket message in 3 s')), 3000);
  });
  ws.close();
  assert.equal(msg.upgrade, 'websocket');
  assert.match(String(msg.connection), /upgrade/i);
  assert.equal(msg.worker, polling.body.worker, 'websocket upgrade went to a different worker than the polling session');
  assert.equal(msg.xff, '127.0.0.1');
});

test('bodies above client_max_body_size are refused with 413', { skip: !HAVE_NGINX && SKIP_MSG }, async () => {
  const r = await fetch(`${base}/v1/rooms`, { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024), headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 413);
  assert.deepEqual(((await r.json()) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE', 'nginx answers in the API error shape');
  const unknown = await fetch(`${base}/nope`);
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
  const ok = await fetch(`${base}/v1/rooms`, { method: 'POST', body: 'x'.repeat(60 * 1024) });
  assert.equal(ok.status, 200);
});

test('a draining worker (503 on handshake) and a dead worker are routed around', { skip: !HAVE_NGINX && SKIP_MSG }, async () => {
  // Find a clientId owned by w1, then make w1 drain: new handshakes must go elsewhere.
  let id = '';
  for (let i = 0; i < 200 && !id; i++) {
    const cand = `drain-probe-${i}-xxxx`;
    if ((await getJson(`/socket.io/?EIO=4&transport=polling&clientId=${cand}`)).body.worker === 'w1') id = cand;
  }
  assert.ok(id, 'no clientId hashed to w1');
  const w1 = stubs[0]!;
  w1.draining = true;
  const moved = await getJson(`/socket.io/?EIO=4&transport=polling&clientId=${id}`);
  assert.equal(moved.status, 200);
  assert.notEqual(moved.body.worker, 'w1');
  // Kill w1 outright: its keys still get an answer from a live worker.
  w1.server.closeAllConnections();
  await new Promise((r) => w1.server.close(r));
  for (let i = 0; i < 5; i++) {
    const r = await getJson(`/socket.io/?EIO=4&transport=polling&clientId=${id}`);
    assert.equal(r.status, 200);
    assert.notEqual(r.body.worker, 'w1');
  }
  const h = await getJson('/healthz');
  assert.equal(h.status, 200);
});

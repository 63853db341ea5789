#!/usr/bin/env node
// Renders nginx/tether.conf.template into a standalone nginx.conf. Plain Node, no dependencies.
//
//   node nginx/render.mjs --production > nginx/tether.conf        (the shipped file)
//   node nginx/render.mjs --upstream 127.0.0.1:3001 --upstream 127.0.0.1:3002 \
//        --listen 127.0.0.1:8080 --prefix /tmp/tether-nginx > /tmp/tether-nginx/nginx.conf
//
// test/deploy/nginx.test.ts checks that nginx/tether.conf equals the --production rendering, so
// edit the template and re-render; never edit tether.conf by hand.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const TEMPLATE_PATH = join(dirname(fileURLToPath(import.meta.url)), 'tether.conf.template');

/** The parameters nginx/tether.conf is rendered with (docker-compose: workers tether-1..3). */
export const PRODUCTION = Object.freeze({
  upstreams: ['tether-1:3000', 'tether-2:3000', 'tether-3:3000'],
  listen: '8080',
  // /tmp exists and is writable in the nginx image, so nginx can run as an unprivileged user.
  prefix: '/tmp',
  errorLog: 'stderr',
  accessLog: '/dev/stdout',
  maxFails: 3,
  failTimeout: '10s',
});

const SAFE = /^[A-Za-z0-9_.:\/\[\]-]+$/;

/**
 * @param {{ upstreams: string[], listen: string, prefix: string, errorLog?: string,
 *           accessLog?: string, maxFails?: number, failTimeout?: string }} opts
 * @returns {string}
 */
export function render(opts) {
  const o = { ...PRODUCTION, errorLog: undefined, accessLog: undefined, ...opts };
  if (!Array.isArray(o.upstreams) || o.upstreams.length === 0) throw new Error('render: at least one upstream is required');
  const errorLog = o.errorLog ?? `${o.prefix}/error.log`;
  const accessLog = o.accessLog ?? `${o.prefix}/access.log`;
  // Values are pasted into nginx syntax: refuse anything that could end a directive.
  for (const [name, v] of [['listen', o.listen], ['prefix', o.prefix], ['errorLog', errorLog], ['accessLog', accessLog], ['failTimeout', o.failTimeout], ...o.upstreams.map((u) => ['upstream', u])]) {
    if (!SAFE.test(String(v))) throw new Error(`render: unsafe ${name} ${JSON.stringify(v)}`);
  }
  if (!Number.isInteger(o.maxFails) || o.maxFails < 0) throw new Error('render: maxFails must be a non-negative integer');
  const servers = o.upstreams
    .map((u) => `        server ${u} max_fails=${o.maxFails} fail_timeout=${o.failTimeout};`)
    .join('\n');
  const vars = {
    GENERATED_NOTICE: 'Generated from nginx/tether.conf.template by nginx/render.mjs: edit the template, then re-render.',
    UPSTREAM_SERVERS: servers,
    LISTEN: String(o.listen),
    PREFIX: o.prefix.replace(/\/+$/, '') || '/',
    ERROR_LOG: errorLog,
    ACCESS_LOG: accessLog,
  };
  const out = readFileSync(TEMPLATE_PATH, 'utf8').replace(/@@([A-Z_]+)@@/g, (m, k) => {
    if (!(k in vars)) throw new Error(`render: unknown placeholder ${m}`);
    return vars[k];
  });
  return out;
}

function parseArgs(argv) {
  const opts = { upstreams: [] };
  let production = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--production') production = true;
    else if (a === '--upstream') opts.upstreams.push(next());
    else if (a === '--listen') opts.listen = next();
    else if (a === '--prefix') opts.prefix = next();
    else if (a === '--error-log') opts.errorLog = next();
    else if (a === '--access-log') opts.accessLog = next();
    else if (a === '--max-fails') opts.maxFails = Number(next());
    else if (a === '--fail-timeout') opts.failTimeout = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (production) return PRODUCTION;
  if (!opts.listen || !opts.prefix) throw new Error('--listen and --prefix are required (or --production)');
  return opts;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    process.stdout.write(render(parseArgs(process.argv.slice(2))));
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
}

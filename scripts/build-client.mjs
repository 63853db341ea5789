#!/usr/bin/env node
// Browser build of the client SDK: one ESM file with socket.io-client bundled in.
//   node scripts/build-client.mjs            → dist/client/tether-client.esm.js (+ .map)
//   node scripts/build-client.mjs --minify   → minified
// The Node build of the SDK (dist/client/*.js + .d.ts) comes from `tsc` like the rest of src/.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { stat } from 'node:fs/promises';

const root = fileURLToPath(new URL('..', import.meta.url));
const outfile = `${root}dist/client/tether-client.esm.js`;

const result = await build({
  entryPoints: [`${root}src/client/index.ts`],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  sourcemap: true,
  minify: process.argv.includes('--minify'),
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  // The protocol is imported as types, plus the error catalogue and the event-name constants of
  // events.ts (neither imports anything at runtime): anything server-side showing up is a bug.
  plugins: [
    {
      name: 'client-only',
      setup(b) {
        b.onResolve({ filter: /^(zod|node:.*|ioredis|redis|bullmq|fastify|pino)$/ }, (args) => ({
          errors: [{ text: `server-side module ${args.path} imported by ${args.importer}` }],
        }));
      },
    },
  ],
});

const inputs = Object.keys(result.metafile.inputs);
// protocol/errors.ts and protocol/events.ts are part of the shared contract and import no server code.
const leaked = inputs.filter((p) => /src\/(?!client\/|protocol\/(errors|events)\.ts)/.test(p));
if (leaked.length) {
  console.error(`browser bundle pulls in server modules:\n  ${leaked.join('\n  ')}`);
  process.exit(1);
}
const { size } = await stat(outfile);
console.log(`dist/client/tether-client.esm.js ${(size / 1024).toFixed(1)} KiB (${inputs.length} inputs)`);

#!/usr/bin/env node
// The standalone browser build of @tether/client: one minified ESM file with socket.io-client and
// @tether/protocol bundled in, for a <script type="module"> without a bundler
// (packages/client/dist/tether-client.min.js). Apps with a bundler import the package itself
// (packages/client/dist/*.js, unbundled ESM, socket.io-client a normal dependency: one copy of it).
// Run from packages/client's build, after its tsc.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { stat } from 'node:fs/promises';

const root = fileURLToPath(new URL('..', import.meta.url));
const outfile = `${root}packages/client/dist/tether-client.min.js`;

const result = await build({
  absWorkingDir: root,
  entryPoints: [`${root}packages/client/src/index.ts`],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  sourcemap: true,
  minify: true,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  // Anything server-side showing up is a bug (the dependency rules say the same at the source).
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
const leaked = inputs.filter((p) => !/^(packages\/(client|protocol)\/|node_modules\/(socket\.io-client|engine\.io-client|engine\.io-parser|socket\.io-parser|@socket\.io\/component-emitter|debug|ms|xmlhttprequest-ssl|ws)\/)/.test(p));
if (leaked.length) {
  console.error(`browser bundle pulls in modules outside the client and its dependencies:\n  ${leaked.join('\n  ')}`);
  process.exit(1);
}
const { size } = await stat(outfile);
console.log(`packages/client/dist/tether-client.min.js ${(size / 1024).toFixed(1)} KiB (${inputs.length} inputs)`);

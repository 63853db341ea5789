// Empties an output folder before a build (default dist/): tsc never deletes the output of a
// source file that was moved or removed, and a stale module or Lua script there could be loaded
// by mistake. `node scripts/clean.mjs packages/client/dist` for a package, relative to the repo.
import { rmSync } from 'node:fs';
const target = process.argv[2] ?? 'dist';
rmSync(new URL(`../${target}`, import.meta.url), { recursive: true, force: true });

// Empties dist/ before a build: tsc never deletes the output of a source file that was moved or
// removed, and a stale module or Lua script there could be loaded by mistake.
import { rmSync } from 'node:fs';
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });

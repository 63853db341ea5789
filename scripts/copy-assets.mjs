// Copies non-TypeScript runtime files (Lua scripts) next to the compiled JavaScript. The target is
// replaced, not merged: a renamed or deleted script must not linger in dist/ (the loader refuses
// files that its registry does not know).
import { cpSync, rmSync } from 'node:fs';
const target = new URL('../dist/redis/scripts', import.meta.url);
rmSync(target, { recursive: true, force: true });
cpSync(new URL('../src/redis/scripts', import.meta.url), target, { recursive: true });

// Copies non-TypeScript runtime files (Lua scripts) next to the compiled JavaScript.
import { cpSync } from 'node:fs';
cpSync(new URL('../src/redis/scripts', import.meta.url), new URL('../dist/redis/scripts', import.meta.url), { recursive: true });

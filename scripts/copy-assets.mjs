// Copies non-TypeScript runtime files next to the compiled JavaScript: the Lua scripts, and the demo
// page (src/demo/page) with the SDK's standalone browser bundle, which the page loads as
// /assets/tether-client.min.js. Targets are replaced, not merged: a renamed or deleted script must
// not linger in dist/ (the loader refuses files that its registry does not know).
import { cpSync, existsSync, rmSync } from 'node:fs';

const copy = (from, to) => {
  const target = new URL(to, import.meta.url);
  rmSync(target, { recursive: true, force: true });
  cpSync(new URL(from, import.meta.url), target, { recursive: true });
};
copy('../src/redis/scripts', '../dist/redis/scripts');
copy('../src/demo/page', '../dist/demo/page');

const bundle = new URL('../packages/client/dist/tether-client.min.js', import.meta.url);
if (!existsSync(bundle)) {
  process.stderr.write('copy-assets: packages/client/dist/tether-client.min.js is missing: build @tether/client first (npm run build does)\n');
  process.exit(1);
}
cpSync(bundle, new URL('../dist/demo/page/tether-client.min.js', import.meta.url));
const map = new URL('../packages/client/dist/tether-client.min.js.map', import.meta.url);
if (existsSync(map)) cpSync(map, new URL('../dist/demo/page/tether-client.min.js.map', import.meta.url));

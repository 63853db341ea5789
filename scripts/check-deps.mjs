// The dependency rules of ../shared/STYLE.md, run before the tests (`pretest`): dependency-cruiser
// checks the module rules in .dependency-cruiser.cjs, and this script adds what it cannot say
// directly — no cycle between the top-level folders of src/ (rooms ⇄ transport and the like), type
// imports included, because a folder cycle is a design cycle even when the compiler erases it.
import { cruise } from 'dependency-cruiser';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const config = require('../.dependency-cruiser.cjs');
const result = await cruise(['src', 'packages/protocol/src', 'packages/client/src'], { ...config.options, validate: true, ruleSet: { forbidden: config.forbidden } });
const out = result.output;
const problems = [];
for (const v of out.summary.violations) problems.push(`${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle: ${v.cycle.map((c) => c.name ?? c).join(' → ')})` : ''}`);

const folder = (path) => {
  const m = /^src\/([^/]+)\//.exec(path);
  return m ? m[1] : null;
};
// (The packages are checked by the rules above; folder cycles are about the server's src/.)
// The client SDK is checked on its own (client-is-server-free); its internal type cycles are its own.
const edges = new Map();
for (const mod of out.modules) {
  const from = folder(mod.source);
  if (!from) continue;
  for (const dep of mod.dependencies) {
    const to = folder(dep.resolved);
    if (!to || to === from) continue;
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from).add(to);
  }
}
// Tarjan would be overkill for a dozen folders: a DFS per folder finds every back edge.
const seen = new Set();
for (const start of edges.keys()) {
  const stack = [[start, [start]]];
  while (stack.length) {
    const [node, path] = stack.pop();
    for (const next of edges.get(node) ?? []) {
      if (next === start) {
        const cycle = [...path, start].join(' → ');
        const key = [...path].sort().join(',');
        if (!seen.has(key)) {
          seen.add(key);
          problems.push(`folder cycle: ${cycle}`);
        }
      } else if (!path.includes(next)) stack.push([next, [...path, next]]);
    }
  }
}

if (problems.length) {
  process.stderr.write(`dependency rules broken:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`dependency rules hold: ${out.summary.totalCruised} modules, ${edges.size} folders, no folder cycle\n`);

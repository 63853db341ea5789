/**
 * What a real k6 v0.48 can parse. Its scripts are ES modules, and v0.48 runs them through its
 * bundled Babel 6 before goja (js/compiler/compiler.go), which stops at ES2017 syntax: object
 * spread and rest, `??`, `?.`, the regex `s` flag, class fields, optional catch bindings … are
 * syntax errors there, while Node runs them happily. The runner parses the script and every file
 * it imports with acorn at ES2017 once, before any VU starts, so a script that only works under
 * the shim fails here too.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Parser } from 'acorn';

export const K6_ECMA_VERSION = 2017;

/** null when k6 v0.48 can parse `source`, else a one-line message with file:line:column. */
export function k6SyntaxProblem(source, file = '<script>') {
  try {
    Parser.parse(source, { ecmaVersion: K6_ECMA_VERSION, sourceType: 'module', locations: true });
    return null;
  } catch (err) {
    if (!(err instanceof SyntaxError) || !err.loc) throw err;
    let newer = false;
    try {
      Parser.parse(source, { ecmaVersion: 'latest', sourceType: 'module' });
      newer = true;
    } catch {
      // a syntax error in any version
    }
    const line = source.split('\n')[err.loc.line - 1] ?? '';
    const why = newer
      ? `syntax newer than ES${K6_ECMA_VERSION}, which k6 v0.48 rejects (object spread/rest, ??, ?., regex s flag, class fields…)`
      : 'a syntax error';
    return `${file}:${err.loc.line}:${err.loc.column + 1}: ${err.message.replace(/ \(\d+:\d+\)$/, '')} — ${why}: ${line.trim().slice(0, 120)}`;
  }
}

/**
 * Checks `file` and, recursively, the files it imports by relative path (k6 modules and remote
 * URLs are not files). Returns the first problem, or null.
 */
export function scriptSyntaxProblem(file, seen = new Set()) {
  if (seen.has(file)) return null;
  seen.add(file);
  const source = readFileSync(file, 'utf8');
  const problem = k6SyntaxProblem(source, file);
  if (problem) return problem;
  const ast = Parser.parse(source, { ecmaVersion: K6_ECMA_VERSION, sourceType: 'module' });
  for (const node of ast.body) {
    const from = node.source?.value;
    if (typeof from === 'string' && (from.startsWith('./') || from.startsWith('../'))) {
      const inner = scriptSyntaxProblem(resolve(dirname(file), from), seen);
      if (inner) return inner;
    }
  }
  return null;
}

/**
 * What a real k6 v0.48 can parse. Its scripts are ES modules, and v0.48 runs them through its
 * bundled Babel 6 before goja, which stops at ES2017 syntax: object spread and rest, `??`, `?.`,
 * the regex `s` flag, class fields, optional catch bindings … are syntax errors there, while Node
 * runs them happily. The shim parses every script file with acorn at ES2017 before Node loads it,
 * so a script that only works under the shim fails here too (/work/shared/k6-build.md lists what
 * a real k6 v0.48 was seen to reject).
 */
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

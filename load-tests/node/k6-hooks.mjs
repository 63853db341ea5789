/**
 * Node module hooks. resolve: map k6's built-in modules to the shim (load-tests/node/k6/*.mjs).
 * load: refuse script files a real k6 v0.48 could not parse (k6-syntax.mjs).
 * Registered by vu-worker.mjs with module.register(); also usable as
 *   node --import ./load-tests/node/k6-register.mjs …
 */
import { fileURLToPath } from 'node:url';
import { k6SyntaxProblem } from './k6-syntax.mjs';

const SHIM_DIR = new URL('./', import.meta.url).href;
const MODULES = {
  k6: 'k6.mjs',
  'k6/ws': 'ws.mjs',
  'k6/http': 'http.mjs',
  'k6/metrics': 'metrics.mjs',
  'k6/crypto': 'crypto.mjs',
  'k6/encoding': 'encoding.mjs',
  'k6/execution': 'execution.mjs',
};

export async function resolve(specifier, context, nextResolve) {
  if (Object.prototype.hasOwnProperty.call(MODULES, specifier)) {
    return { url: new URL(`./k6/${MODULES[specifier]}`, import.meta.url).href, shortCircuit: true };
  }
  if (specifier.startsWith('k6/')) {
    throw new Error(`${specifier} is not emulated by the Node k6 shim (supported: ${Object.keys(MODULES).join(', ')})`);
  }
  return nextResolve(specifier, context);
}

/** The script and the files it imports: everything but the shim itself and node_modules. */
function isScriptFile(url) {
  return url.startsWith('file:') && !url.startsWith(SHIM_DIR) && !url.includes('/node_modules/');
}

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (isScriptFile(url) && result.source != null) {
    const source = typeof result.source === 'string' ? result.source : Buffer.from(result.source).toString('utf8');
    const problem = k6SyntaxProblem(source, fileURLToPath(url));
    if (problem) throw new SyntaxError(problem);
  }
  return result;
}

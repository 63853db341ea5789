/**
 * Node module resolve hooks: map k6's built-in modules to the shim (load-tests/node/k6/*.mjs).
 * Registered by vu-worker.mjs with module.register(); also usable as
 *   node --import ./load-tests/node/k6-register.mjs …
 * (The ES2017 syntax check runs once in the runner, not here: a hook runs per VU thread, and
 * parsing every file in each of a few hundred VUs made them miss their init deadline.)
 */
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


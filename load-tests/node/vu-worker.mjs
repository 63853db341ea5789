/**
 * One k6 VU as a Node worker thread. Registers the k6/* resolve hooks, installs the shim runtime,
 * imports the script (k6's init context, once per VU), then obeys the runner:
 *   { cmd: 'setup' }                       run setup(), reply setup-done with its JSON
 *   { cmd: 'run', data, plan }             iterate the exec function per plan, reply done
 *   { cmd: 'teardown', data }              run teardown(data)
 * Every reply goes over the same MessagePort as metrics, so the runner sees all of a VU's samples
 * before its `done`.
 */
import { register } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { format } from 'node:util';

register('./k6-hooks.mjs', import.meta.url);
const shim = await import('./k6-shim.mjs');

const { scriptUrl, vu, env, sab, port, scenario, sharedIterations } = workerData;
shim.installRuntime({ port, sab, vu, env, scenario, sharedIterations });

const prefix = vu === 0 ? 'setup' : `vu=${vu}`;
const out = (level) => (...args) => {
  process.stdout.write(`${level}[${prefix}] ${format(...args)}\n`);
};
console.log = out('INFO');
console.info = out('INFO');
console.debug = out('DEBU');
console.warn = out('WARN');
console.error = out('ERRO');

function describe(e) {
  if (e && e.stack) return String(e.stack).split('\n').slice(0, 4).join('\n');
  return String(e);
}

let mod;
try {
  mod = await import(scriptUrl);
  shim.post({ op: 'ready', options: JSON.parse(JSON.stringify(mod.options || {})) });
} catch (e) {
  shim.post({ op: 'init-error', error: describe(e) });
}

async function call(fn, arg) {
  const r = fn(arg);
  return r && typeof r.then === 'function' ? await r : r;
}

function waitUntil(t) {
  const left = t - Date.now();
  if (left > 0) shim.sleep(left / 1000);
}

async function runPlan(data, plan) {
  const fn = mod[plan.exec || 'default'];
  if (typeof fn !== 'function') {
    shim.post({ op: 'done', iterations: 0, interrupted: 0, error: `script exports no function ${plan.exec || 'default'}` });
    return;
  }
  const shared = plan.sharedTotal ? new Int32Array(sharedIterations) : null;
  let iterations = 0;
  let interrupted = 0;
  try {
    waitUntil(plan.startAt);
    for (;;) {
      if (shim.stopRequested() || Date.now() >= plan.stopAt) break;
      if (plan.iterations !== null && iterations >= plan.iterations) break;
      if (shared && Atomics.add(shared, 0, 1) >= plan.sharedTotal) break;
      shim.setIteration(iterations);
      const started = Date.now();
      try {
        await call(fn, JSON.parse(data));
        shim.addSample('iterations', 'counter', 1);
        shim.addSample('iteration_duration', 'trend', Date.now() - started);
      } catch (e) {
        if (e instanceof shim.HardStop) {
          interrupted++;
          break;
        }
        interrupted++;
        console.error(`iteration ${iterations} failed: ${describe(e)}`);
      }
      iterations++;
      shim.flushMetrics();
    }
  } catch (e) {
    if (!(e instanceof shim.HardStop)) console.error(describe(e));
  }
  shim.flushMetrics();
  shim.post({ op: 'done', iterations, interrupted });
}

parentPort.on('message', async (msg) => {
  if (!mod) return;
  try {
    if (msg.cmd === 'setup') {
      const data = typeof mod.setup === 'function' ? await call(mod.setup) : undefined;
      shim.flushMetrics();
      shim.post({ op: 'setup-done', data: data === undefined ? 'null' : JSON.stringify(data) });
    } else if (msg.cmd === 'run') {
      await runPlan(msg.data, msg.plan);
    } else if (msg.cmd === 'teardown') {
      if (typeof mod.teardown === 'function') await call(mod.teardown, JSON.parse(msg.data));
      shim.flushMetrics();
      shim.post({ op: 'teardown-done' });
    }
  } catch (e) {
    shim.flushMetrics();
    shim.post({ op: `${msg.cmd}-error`, error: describe(e) });
  }
});

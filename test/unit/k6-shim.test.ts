/**
 * Issue 11 point 8: the Node k6 shim is as strict as a real k6 v0.48, and the five scripts pass it.
 * - socket.setTimeout / setInterval reject a delay <= 0 with k6's own error (js/modules/k6/ws/ws.go:
 *   "setTimeout requires a >0 timeout parameter, received 0.00");
 * - script files with syntax newer than ES2017 (object spread, `??`, `?.`, the regex `s` flag…)
 *   are refused before they run, as k6 v0.48's Babel 6 refuses them;
 * - every socket timer in load-tests/k6 goes through timerMs() (>= 1 ms), since msUntil() reaches 0
 *   when a VU starts late.
 *   node --import tsx --test test/unit/k6-shim.test.ts
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { k6TimerDelayMs } from '../../load-tests/node/k6-shim.mjs';
import { k6SyntaxProblem } from '../../load-tests/node/k6-syntax.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNNER = join(ROOT, 'load-tests/node/run-k6-script.mjs');
const K6_DIR = join(ROOT, 'load-tests/k6');
const scriptFiles = [
  ...readdirSync(K6_DIR).filter((f) => f.endsWith('.js')).map((f) => join(K6_DIR, f)),
  ...readdirSync(join(K6_DIR, 'lib')).map((f) => join(K6_DIR, 'lib', f)),
];

describe('socket timers: a delay <= 0 is an error, as in k6', () => {
  it('throws k6\'s message for 0, negatives, sub-nanosecond, NaN and overflowing delays', () => {
    const cases: [unknown, string][] = [
      [0, '0.00'],
      [-1.23, '-1.23'],
      [0.0000001, '0.00'],
      [undefined, 'NaN'],
      ['soon', 'NaN'],
      [Infinity, '+Inf'],
    ];
    for (const [ms, shown] of cases) {
      assert.throws(() => k6TimerDelayMs('setTimeout', ms), { message: `setTimeout requires a >0 timeout parameter, received ${shown}` }, String(ms));
      assert.throws(() => k6TimerDelayMs('setInterval', ms), { message: `setInterval requires a >0 timeout parameter, received ${shown}` }, String(ms));
    }
  });

  it('accepts any delay of at least a nanosecond', () => {
    assert.equal(k6TimerDelayMs('setTimeout', 1), 1);
    assert.equal(k6TimerDelayMs('setTimeout', 0.5), 0.5);
    assert.equal(k6TimerDelayMs('setInterval', '250'), 250);
  });

  describe('through the runner, inside a real socket loop', () => {
    let server: WebSocketServer;
    let dir: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'tether-k6-shim-'));
      server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
      await new Promise((r) => server.once('listening', r));
    });
    after(() => {
      server?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    function run(name: string, source: string): Promise<{ code: number; output: string }> {
      const file = join(dir, name);
      writeFileSync(file, source);
      const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
      return new Promise((resolve) => {
        execFile(process.execPath, [RUNNER, file, '-e', `URL=${url}`, '--quiet', '--max-duration', '30s'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } }, (err, stdout, stderr) => {
          resolve({ code: err ? Number((err as { code?: number }).code) : 0, output: stdout + stderr });
        });
      });
    }

    it('socket.setTimeout(fn, 0) fails the iteration with k6\'s error; setTimeout(fn, 1) runs', async () => {
      const script = (delay: string) => `import ws from 'k6/ws';
import { check } from 'k6';
export const options = { vus: 1, iterations: 1, thresholds: { checks: ['rate==1'] } };
export default function () {
  let fired = false;
  ws.connect(__ENV.URL, function (socket) {
    socket.setTimeout(function () { fired = true; socket.close(); }, ${delay});
  });
  check(fired, { fired: function (f) { return f; } });
}
`;
      const zero = await run('zero.js', script('0'));
      assert.match(zero.output, /iteration 0 failed: Error: setTimeout requires a >0 timeout parameter, received 0\.00/);
      const one = await run('one.js', script('1'));
      assert.doesNotMatch(one.output, /requires a >0|failed/);
      assert.equal(one.code, 0, `the timer fired (threshold checks rate==1): ${one.output}`);
    });

    it('a script with object spread does not start (exit 107, file:line in the message)', async () => {
      const r = await run('spread.js', `export const options = { vus: 1, iterations: 1 };
const base = { a: 1 };
export default function () {
  return { ...base, b: 2 };
}
`);
      assert.equal(r.code, 107);
      assert.match(r.output, /spread\.js:4:\d+: .*newer than ES2017/);
    });

    it('so does a script whose imported library uses `??`', async () => {
      writeFileSync(join(dir, 'helper.js'), 'export function pick(a, b) {\n  return a ?? b;\n}\n');
      const r = await run('uses-helper.js', `import { pick } from './helper.js';
export const options = { vus: 1, iterations: 1 };
export default function () { return pick(null, 1); }
`);
      assert.equal(r.code, 107);
      assert.match(r.output, /helper\.js:2:\d+: .*newer than ES2017/);
    });
  });
});

describe('script syntax: what k6 v0.48 cannot parse is refused', () => {
  for (const [what, source] of [
    ['object spread', 'const o = { ...a };'],
    ['object rest', 'const { a, ...rest } = o;'],
    ['nullish coalescing', 'const x = a ?? 1;'],
    ['optional chaining', 'const x = a?.b;'],
    ['the regex s flag', 'const re = /a.b/s;'],
    ['class fields', 'class A { x = 1; }'],
  ]) {
    it(`refuses ${what}`, () => assert.match(k6SyntaxProblem(source, 'x.js') ?? '', /^x\.js:1:\d+: .*newer than ES2017/));
  }

  it('accepts ES2017: template literals, destructuring, array spread, exponent, async functions', () => {
    assert.equal(k6SyntaxProblem('const [a, ...r] = [1, 2]; const { b } = { b: `${a}` }; f(...r); const p = 2 ** 3; async function g() { await p; }'), null);
  });

  it('the five scripts and their library pass', () => {
    assert.equal(scriptFiles.length >= 8, true);
    for (const file of scriptFiles) assert.equal(k6SyntaxProblem(readFileSync(file, 'utf8'), file), null, file);
  });
});

/**
 * The delay argument of every socket.setTimeout / socket.setInterval call in `source`: the text
 * between the call's last top-level comma and its closing parenthesis.
 */
export function socketTimerDelays(source: string): string[] {
  const delays: string[] = [];
  const call = /socket\.set(?:Timeout|Interval)\(/g;
  for (let m = call.exec(source); m; m = call.exec(source)) {
    let depth = 1;
    let lastComma = -1;
    let quote: string | null = null;
    let i = m.index + m[0].length;
    for (; i < source.length && depth > 0; i++) {
      const c = source[i]!;
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = null;
      } else if (c === "'" || c === '"' || c === '`') quote = c;
      else if (c === '/' && source[i + 1] === '/') i = source.indexOf('\n', i);
      else if ('([{'.includes(c)) depth++;
      else if (')]}'.includes(c)) depth--;
      else if (c === ',' && depth === 1) lastComma = i;
    }
    delays.push(source.slice(lastComma + 1, i - 1).trim());
  }
  return delays;
}

it('every socket timer in the k6 scripts gets at least 1 ms (timerMs or a positive literal)', () => {
  let seen = 0;
  for (const file of scriptFiles) {
    for (const delay of socketTimerDelays(readFileSync(file, 'utf8'))) {
      seen++;
      assert.ok(/^timerMs\(/.test(delay) || /^[1-9]\d*$/.test(delay), `${file}: socket timer delay \`${delay}\` may reach 0 (wrap it in timerMs())`);
    }
  }
  assert.ok(seen >= 15, `found ${seen} socket timers`);
});

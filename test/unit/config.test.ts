import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config/index.ts';

test('defaults are applied and the config is frozen', () => {
  const c = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' });
  assert.equal(c.port, 3000);
  assert.equal(c.ws.pingInterval, 25_000);
  assert.equal(c.ws.pingTimeout, 10_000);
  assert.equal(c.sessions.gracePeriodMs, 30_000);
  assert.equal(c.sessions.takeoverGraceMs, 2_500);
  assert.equal(c.sessions.reconnectFlushMs, 3_000);
  assert.equal(c.redis.adapterUrl, 'redis://127.0.0.1:6379', 'adapter URL defaults to REDIS_URL');
  assert.equal(c.auth.allowGuests, true);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.sessions));
  assert.throws(() => {
    (c as { port: number }).port = 1;
  });
});

test('every bad variable is reported at once, one line each', () => {
  try {
    loadConfig({ PORT: 'eighty', REDIS_URL: 'http://nope', WS_PING_INTERVAL: '5', ALLOW_GUESTS: 'maybe', JWT_SECRET: 'short' });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const vars = err.problems.map((p) => p.split(':')[0]);
    assert.deepEqual(vars.sort(), ['ALLOW_GUESTS', 'JWT_SECRET', 'PORT', 'REDIS_URL', 'WS_PING_INTERVAL']);
    assert.match(err.message, /PORT: .*got "eighty"/);
  }
});

test('empty strings mean unset', () => {
  assert.equal(loadConfig({ PORT: '', REDIS_URL: '' }).port, 3000);
});

test('the README configuration table documents every variable', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const name of CONFIG_VARIABLES) assert.ok(readme.includes(`| \`${name}\` |`), `README documents ${name}`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, ERRORS } from '@tether/protocol';
import { SEQUENCED_EVENTS } from '@tether/protocol';

const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');
const eventsSource = readFileSync(new URL('../../packages/protocol/src/events.ts', import.meta.url), 'utf8');

function section(start: string, end: string): string {
  const i = eventsSource.indexOf(start);
  return eventsSource.slice(i, eventsSource.indexOf(end, i));
}

test('the error catalogue and docs/PROTOCOL.md agree, status and retry included', () => {
  const table = doc.slice(doc.indexOf('## Error codes'));
  const rows = [...table.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \| (yes|no) \|/gm)];
  assert.deepEqual(rows.map((r) => r[1]).sort(), [...ERROR_CODES].sort(), 'same set of codes');
  for (const [, code, status, retry] of rows) {
    const e = ERRORS[code as keyof typeof ERRORS];
    assert.equal(Number(status), e.status, `${code} status`);
    assert.equal(retry === 'yes', e.retry, `${code} retry`);
  }
});

test('every event of the typed contract is documented', () => {
  const names = (src: string) => [...src.matchAll(/^\s+'?([a-z:_]+)'?: \(payload/gm)].map((m) => m[1]!);
  const c2s = names(section('export interface ClientToServerEvents', '\n}'));
  const s2c = names(section('export interface ServerToClientEvents', '\n}'));
  assert.ok(c2s.length >= 15 && s2c.length >= 15, 'parsed the event maps');
  for (const name of [...c2s, ...s2c]) assert.ok(doc.includes(`\`${name}\``), `PROTOCOL.md documents ${name}`);
});

test('SEQUENCED_EVENTS lists exactly the keys of SequencedEvents', () => {
  const keys = [...section('export interface SequencedEvents', '\n}').matchAll(/^\s+'([a-z:_]+)':/gm)].map((m) => m[1]);
  assert.deepEqual([...SEQUENCED_EVENTS].sort(), keys.sort());
});

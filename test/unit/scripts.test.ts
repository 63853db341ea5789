import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { generateRoomCode } from '../../src/rooms/codes.ts';
import { RoomCode } from '../../src/protocol/schemas.ts';
import { hashPassword, verifyPassword } from '../../src/rooms/password.ts';
import { SCRIPT_ERRORS } from '../../src/redis/scripts.ts';

const dir = new URL('../../src/redis/scripts/', import.meta.url);

test('every Lua script declares as many KEYS as its file name says, and documents them', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.lua'))) {
    const n = Number(/-(\d+)\.lua$/.exec(file)![1]);
    const src = readFileSync(new URL(file, dir), 'utf8');
    const used = new Set([...src.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1])));
    assert.equal(Math.max(0, ...used), n, `${file} uses KEYS[1..${n}]`);
    assert.match(src, /-- Returns/, `${file} documents its returns`);
    for (const inc of src.matchAll(/^--@include (\w+)$/gm)) assert.ok(readdirSync(new URL('includes/', dir)).includes(`${inc[1]}.lua`));
  }
});

test('negative script statuses map to catalogue codes', () => {
  for (const code of Object.values(SCRIPT_ERRORS)) assert.match(code, /^[A-Z_]+$/);
});

test('room codes are 8 unambiguous characters and validate', () => {
  for (let i = 0; i < 500; i++) {
    const code = generateRoomCode();
    assert.match(code, /^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);
    assert.equal(RoomCode.parse(code.toLowerCase()), code);
  }
  assert.equal(RoomCode.safeParse('ABCD0O1I').success, false);
});

test('passwords are stored as scrypt hashes and verified', async () => {
  const h = await hashPassword('correct horse');
  assert.match(h, /^scrypt\$/);
  assert.ok(!h.includes('correct horse'));
  assert.equal(await verifyPassword('correct horse', h), true);
  assert.equal(await verifyPassword('wrong', h), false);
  assert.equal(await verifyPassword('x', 'garbage'), false);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryStorage, webStorage, resolveStorage, identityKeys, type StorageAdapter, type WebStorageLike } from '../../packages/client/src/storage.ts';

async function roundTrip(s: StorageAdapter): Promise<void> {
  assert.equal((await s.get('k')) ?? null, null);
  await s.set('k', 'v1');
  assert.equal(await s.get('k'), 'v1');
  await s.set('k', 'v2');
  assert.equal(await s.get('k'), 'v2');
  await s.remove('k');
  assert.equal((await s.get('k')) ?? null, null);
}

class FakeWebStorage implements WebStorageLike {
  readonly map = new Map<string, string>();
  getItem(k: string) {
    return this.map.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.map.set(k, v);
  }
  removeItem(k: string) {
    this.map.delete(k);
  }
}

test('memory storage', async () => {
  await roundTrip(memoryStorage());
  const seeded = memoryStorage({ a: '1' });
  assert.equal(seeded.get('a'), '1');
});

test('web storage writes through to the given Storage', async () => {
  const fake = new FakeWebStorage();
  const s = webStorage(fake);
  await roundTrip(s);
  s.set('tether:clientId', 'abc');
  assert.equal(fake.map.get('tether:clientId'), 'abc');
});

test('web storage falls back to memory when the Storage throws (private mode, quota)', async () => {
  const broken: WebStorageLike = {
    getItem() {
      throw new Error('SecurityError');
    },
    setItem() {
      throw new Error('QuotaExceededError');
    },
    removeItem() {
      throw new Error('SecurityError');
    },
  };
  await roundTrip(webStorage(broken));
});

test('localStorage is used when present on globalThis', async () => {
  const fake = new FakeWebStorage();
  (globalThis as { localStorage?: WebStorageLike }).localStorage = fake;
  try {
    const s = resolveStorage('local');
    s.set('x', 'y');
    assert.equal(fake.map.get('x'), 'y');
  } finally {
    delete (globalThis as { localStorage?: WebStorageLike }).localStorage;
  }
  assert.throws(() => resolveStorage('local'), TypeError);
  assert.throws(() => resolveStorage('session'), TypeError);
});

test('custom async adapters are passed through', async () => {
  const data = new Map<string, string>();
  const custom: StorageAdapter = {
    get: async (k) => data.get(k) ?? null,
    set: async (k, v) => void data.set(k, v),
    remove: async (k) => void data.delete(k),
  };
  assert.equal(resolveStorage(custom), custom);
  await roundTrip(custom);
});

test('identity keys carry the prefix', () => {
  assert.deepEqual(identityKeys('app1:'), { clientId: 'app1:clientId', sessionToken: 'app1:sessionToken' });
});

/**
 * Where the SDK keeps the client's identity (clientId and sessionToken) between runs. Any object
 * with get/set/remove works; each may be sync or return a promise (IndexedDB, React Native
 * AsyncStorage, an encrypted file...).
 */
export interface StorageAdapter {
  get(key: string): string | null | undefined | Promise<string | null | undefined>;
  set(key: string, value: string): void | Promise<void>;
  remove(key: string): void | Promise<void>;
}

/** Process memory: the identity lives as long as the TetherClient's process (Node default). */
export function memoryStorage(initial: Record<string, string> = {}): StorageAdapter & { readonly data: Map<string, string> } {
  const data = new Map(Object.entries(initial));
  return {
    data,
    get: (key) => data.get(key) ?? null,
    set: (key, value) => void data.set(key, value),
    remove: (key) => void data.delete(key),
  };
}

/** The subset of the Web Storage API the adapter uses (localStorage, sessionStorage). */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Web Storage. `localStorage` survives reloads and is shared by every tab of the origin, so two
 * tabs would present one clientId and replace each other (session:replaced); pass
 * `sessionStorage` for one identity per tab that still survives a reload.
 * Storage errors (private mode, quota) are swallowed: identity then lives in memory only.
 */
export function webStorage(storage?: WebStorageLike): StorageAdapter {
  const target = storage ?? (globalThis as { localStorage?: WebStorageLike }).localStorage;
  if (!target) throw new TypeError('webStorage: no storage given and globalThis.localStorage is unavailable');
  const fallback = memoryStorage();
  return {
    get(key) {
      try {
        return target.getItem(key) ?? fallback.get(key);
      } catch {
        return fallback.get(key);
      }
    },
    set(key, value) {
      try {
        target.setItem(key, value);
      } catch {
        fallback.set(key, value);
      }
    },
    remove(key) {
      fallback.remove(key);
      try {
        target.removeItem(key);
      } catch {
        // nothing stored there
      }
    },
  };
}

/** `webStorage(localStorage)`; throws where there is no localStorage (Node). */
export function localStorageAdapter(): StorageAdapter {
  return webStorage();
}

export type StorageOption = 'memory' | 'local' | 'session' | StorageAdapter;

export function resolveStorage(option: StorageOption | undefined): StorageAdapter {
  if (option === undefined || option === 'memory') return memoryStorage();
  if (option === 'local') return webStorage();
  if (option === 'session') {
    const s = (globalThis as { sessionStorage?: WebStorageLike }).sessionStorage;
    if (!s) throw new TypeError("storage 'session': globalThis.sessionStorage is unavailable");
    return webStorage(s);
  }
  return option;
}

/** Identity keys under a per-app prefix, so two apps (or two test clients) on one origin do not collide. */
export function identityKeys(prefix: string): { clientId: string; sessionToken: string } {
  return { clientId: `${prefix}clientId`, sessionToken: `${prefix}sessionToken` };
}

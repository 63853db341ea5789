import type { SessionPayload } from '@tether/protocol';
import { identityKeys, type StorageAdapter } from './storage.js';

/** A v4 UUID: crypto.randomUUID where it exists (Node, secure browser contexts), else built from getRandomValues. */
export function randomId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface Identity {
  clientId: string;
  sessionToken?: string;
}

/**
 * The client's persistent identity: a clientId generated once and the sessionToken the server
 * issued for it, both kept in the app's storage (sync or async adapter).
 */
export class IdentityStore {
  private identity: Identity | null = null;
  private readonly keys: { clientId: string; sessionToken: string };

  constructor(
    private readonly storage: StorageAdapter,
    prefix: string,
    /** A storage write failed (the identity still lives in memory). */
    private readonly onError: (err: unknown) => void,
  ) {
    this.keys = identityKeys(prefix);
  }

  /** The identity, once load() ran. */
  get current(): Identity | null {
    return this.identity;
  }

  /** Reads the stored identity, or generates and stores a new clientId; once. */
  async load(): Promise<void> {
    if (this.identity) return;
    const clientId = await this.storage.get(this.keys.clientId);
    const sessionToken = await this.storage.get(this.keys.sessionToken);
    if (clientId && /^[A-Za-z0-9_-]{8,64}$/.test(clientId)) {
      this.identity = { clientId, ...(sessionToken ? { sessionToken } : {}) };
      return;
    }
    this.identity = { clientId: randomId() };
    await this.storage.remove(this.keys.sessionToken);
    await this.storage.set(this.keys.clientId, this.identity.clientId);
  }

  /** The server refused the stored identity (SESSION_INVALID): a new clientId, no token. */
  async reset(): Promise<{ previousClientId: string; clientId: string }> {
    const previousClientId = this.identity?.clientId ?? '';
    this.identity = { clientId: randomId() };
    await this.storage.remove(this.keys.sessionToken);
    await this.storage.set(this.keys.clientId, this.identity.clientId);
    return { previousClientId, clientId: this.identity.clientId };
  }

  /** Takes what a handshake's session says (a clientId the server chose, a newly issued token); true when the clientId changed. */
  adopt(session: SessionPayload): boolean {
    const identity = this.identity!;
    let changed = false;
    if (session.clientId !== identity.clientId) {
      identity.clientId = session.clientId;
      this.persist(this.keys.clientId, session.clientId);
      changed = true;
    }
    if (session.sessionToken) {
      identity.sessionToken = session.sessionToken;
      this.persist(this.keys.sessionToken, session.sessionToken);
    }
    return changed;
  }

  private persist(key: string, value: string): void {
    Promise.resolve()
      .then(() => this.storage.set(key, value))
      .catch((err: unknown) => this.onError(err));
  }
}

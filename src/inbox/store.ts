import { webhookFilter, type Config } from '../config/index.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';

export type Pushed = { stored: true; connections: number } | { stored: false; connections: number; originalJson: string };

/** A user's inbox and connected devices over their scripts: named arguments in, typed results out. */
export class InboxStore {
  constructor(
    private readonly config: Config,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
  ) {}

  async push(userId: string, a: { memberJson: string; ts: number; dedupPrefix: string }): Promise<Pushed> {
    const reply = await this.scripts.run('inboxPush', [this.keys.userInbox(userId), this.keys.userConnections(userId)], [
      a.memberJson, a.ts, this.config.inbox.ttlMs, this.config.inbox.maxMessages, a.dedupPrefix, a.ts - this.config.events.dedupTtlMs,
    ]);
    if (reply[0] === 2) return { stored: false, connections: Number(reply[1]), originalJson: String(reply[2]) };
    return { stored: true, connections: Number(reply[1]) };
  }

  /** Every member still in the inbox (JSON), after dropping entries older than INBOX_TTL_MS. */
  async pending(userId: string, now: number): Promise<string[]> {
    const reply = await this.scripts.run('inboxPending', [this.keys.userInbox(userId)], [now, this.config.inbox.ttlMs]);
    return reply.slice(1).map(String);
  }

  async ack(userId: string, idsWithTs: (string | number)[]): Promise<number> {
    const reply = await this.scripts.run('inboxAck', [this.keys.userInbox(userId)], idsWithTs);
    return Number(reply[0]);
  }

  /** A device of the user connected; the user's first (after being offline) writes user.online. */
  async deviceConnected(userId: string, clientId: string, epoch: number): Promise<void> {
    await this.scripts.run('inboxConnect', [this.keys.userConnections(userId), this.keys.userPresence(userId), this.keys.userHooks(userId)], [
      clientId, epoch, this.config.sessions.ttlMs, userId, webhookFilter(this.config),
    ]);
  }

  /** A device went away. Returns how many of the user's devices remain connected. */
  async deviceDisconnected(userId: string, clientId: string, epoch: number): Promise<number> {
    const reply = await this.scripts.run('inboxDisconnect', [this.keys.userConnections(userId)], [clientId, epoch]);
    return Number(reply[0]);
  }

  /** After the grace: no device came back → user.offline (true). */
  async userOffline(userId: string): Promise<boolean> {
    const reply = await this.scripts.run('userOffline', [this.keys.userConnections(userId), this.keys.userPresence(userId), this.keys.userHooks(userId)], [userId, webhookFilter(this.config)]);
    return reply[0] === 1;
  }
}

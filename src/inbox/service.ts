import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { jobId, type JobKind, type Jobs } from '../jobs/queues.js';
import type { Webhooks } from '../webhooks/service.js';
import { encodeEventData } from '../events/encode.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { Conn, Fanout } from '../fanout/port.js';
import type { InboxMessage } from '@tether/protocol';
import type { InboxStore } from './store.js';

export const USER_OFFLINE_QUEUE = 'user-offline';
const UserOfflineJob = z.object({ v: z.literal(1), userId: z.string() });

export interface SendRequest {
  toUserId: string;
  /** The sender's userId, or `service:<name>` for the HTTP API. */
  from: string;
  type: string;
  data: unknown;
  /** Resends with the same key while the original is unacknowledged return the original id. */
  dedupKey: string | null;
}

export interface SendResult {
  id: string;
  /** The recipient had at least one connected device when the message was stored. */
  delivered: boolean;
  duplicate: boolean;
}

/**
 * Message ids: 9 base-36 digits of the ms timestamp, `-`, 12 random url-safe characters. They sort
 * by time as strings, are unique without coordination between workers, and carry the member's
 * score, so an ack finds its member without scanning the inbox.
 */
const ID_PATTERN = /^([0-9a-z]{9})-[A-Za-z0-9_-]{12}$/;

export function newMessageId(ts: number): string {
  return `${ts.toString(36).padStart(9, '0')}-${randomBytes(9).toString('base64url')}`;
}

export function messageIdTs(id: string): number | null {
  const m = ID_PATTERN.exec(id);
  return m ? parseInt(m[1]!, 36) : null;
}

/**
 * Direct messages to users. Store first, then emit: a message is in the inbox before any socket
 * can see it, so a device that misses the live emit (offline, reconnecting, on a worker that just
 * died) gets it from the inbox on its next connect. Messages leave the inbox only when a device of
 * the user acknowledges them (or age out / are pushed out by the length bound).
 * Delivery is at-least-once: a device connecting while a message is sent can get it both live
 * and from the pending read; clients drop duplicates by id.
 */
export class InboxService {
  constructor(
    private readonly config: Config,
    private readonly store: InboxStore,
    private readonly fanout: Fanout,
    private readonly jobs: Jobs,
    private readonly webhooks: Webhooks,
    private readonly log: Logger,
  ) {}

  /** Same rule as room events: serialized data over MAX_EVENT_DATA_BYTES is refused. */
  private encodeData(data: unknown): string {
    return encodeEventData(data, this.config.events.maxDataBytes);
  }

  async send(req: SendRequest): Promise<SendResult> {
    const dataJson = this.encodeData(req.data);
    const ts = Date.now();
    const id = newMessageId(ts);
    // The dedup key leads the member so the script can match it as a prefix; app data comes later
    // and cannot forge it.
    const dedupPrefix = req.dedupKey ? `{"dk":${JSON.stringify(req.dedupKey)},` : '';
    const member = `${dedupPrefix || '{'}"id":${JSON.stringify(id)},"from":${JSON.stringify(req.from)},"type":${JSON.stringify(req.type)},"data":${dataJson},"ts":${ts}}`;
    const pushed = await this.store.push(req.toUserId, { memberJson: member, ts, dedupPrefix });
    const delivered = pushed.connections > 0;
    if (!pushed.stored) {
      const original = JSON.parse(pushed.originalJson) as { id: string };
      return { id: original.id, delivered, duplicate: true };
    }
    metrics.inboxQueued.inc();
    const message: InboxMessage = { id, from: req.from, type: req.type, data: req.data ?? null, ts };
    // Emitted even when no connection is recorded: the record can lag a connect by a round trip,
    // and an emit to an empty Socket.IO room costs one adapter publish.
    this.fanout.toUser(req.toUserId, 'inbox:message', message);
    if (delivered) metrics.inboxDelivered.inc();
    return { id, delivered, duplicate: false };
  }

  /** Every message still in the inbox, oldest first. */
  async pending(userId: string): Promise<InboxMessage[]> {
    const out: InboxMessage[] = [];
    for (const raw of await this.store.pending(userId, Date.now())) {
      try {
        const m = JSON.parse(String(raw)) as InboxMessage;
        out.push({ id: m.id, from: m.from, type: m.type, data: m.data, ts: m.ts });
      } catch (err) {
        this.log.warn({ err, userId }, 'unreadable inbox entry skipped');
      }
    }
    // Same-millisecond members sort by their JSON in Redis; ids break the tie by time then randomness.
    return out.sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Removes the given ids from the user's own inbox; returns how many were there. */
  async ack(userId: string, ids: string[]): Promise<number> {
    const args: (string | number)[] = [];
    for (const id of new Set(ids)) {
      const ts = messageIdTs(id);
      if (ts !== null) args.push(id, ts);
    }
    if (args.length === 0) return 0;
    return this.store.ack(userId, args);
  }

  /**
   * onConnected hook: records the device as connected, then hands it every pending message. The
   * socket already joined userRoom(userId), so a message stored after the pending read still
   * reaches it live: nothing falls between the two.
   */
  async deliverPending(conn: Conn): Promise<void> {
    const { userId, clientId, epoch } = conn.data;
    if (!userId) return;
    await this.store.deviceConnected(userId, clientId, epoch);
    this.webhooks.relayUserSoon(userId);
    // The socket may have gone while the record was written; its disconnect handler may have run
    // before the record existed, so remove it here (epoch-checked, harmless if already gone).
    if (!conn.connected) {
      await this.store.deviceDisconnected(userId, clientId, epoch);
      return;
    }
    const messages = await this.pending(userId);
    for (const m of messages) conn.emit('inbox:message', m);
    if (messages.length > 0) metrics.inboxDelivered.inc(messages.length);
  }

  /** A socket of a dead worker, found by the reaper: same as its disconnect. */
  async reaped(socket: { clientId: string; epoch: number; userId: string | null }): Promise<void> {
    if (!socket.userId) return;
    await this.deviceGone(socket.userId, socket.clientId, socket.epoch);
  }

  /** Disconnect of a user's socket: the device no longer counts as connected (unless replaced). */
  async disconnected(conn: Conn): Promise<void> {
    const { userId, clientId, epoch } = conn.data;
    if (!userId) return;
    await this.deviceGone(userId, clientId, epoch);
  }

  /**
   * A device of the user went away. When it was the last one, user.offline is decided only after
   * USER_OFFLINE_GRACE_MS (a delayed job that finds a device back after a blip and says nothing).
   */
  private async deviceGone(userId: string, clientId: string, epoch: number): Promise<void> {
    const remaining = await this.store.deviceDisconnected(userId, clientId, epoch);
    if (remaining > 0 || !this.webhooks.enabled) return;
    await this.jobs.schedule(USER_OFFLINE_QUEUE, jobId('uoff', createHash('sha1').update(userId).digest('hex'), clientId, epoch), { v: 1, userId }, this.config.webhooks.userOfflineGraceMs);
  }

  /** The user-offline check (see deviceGone). */
  userOfflineJobKind(): JobKind<typeof UserOfflineJob> {
    return {
      queue: USER_OFFLINE_QUEUE,
      schema: UserOfflineJob,
      concurrency: 20,
      // Not per room: one queue (partition 0); at most one job per user going offline.
      perRoom: false,
      process: async ({ userId }) => {
        if (!(await this.store.userOffline(userId))) return 'stale';
        await this.webhooks.relayUser(userId);
        return 'done';
      },
    };
  }
}

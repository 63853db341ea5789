import type { Config } from '../config/index.js';
import { metrics } from '../observability/metrics.js';
import { TetherError } from '../protocol/errors.js';
import type { Logger } from '../observability/logger.js';
import type { PresenceBatch } from '../protocol/events.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';
import type { RedisCommands } from '../redis/client.js';
import { broadcast } from '../rooms/broadcast.js';
import type { TetherNamespace } from '../transport/types.js';
import { jobId, type Jobs } from '../jobs/queues.js';

export const FLUSH_QUEUE = 'flush';

/**
 * Presence in reconnect storms: a member that drops is marked away, one that comes back online,
 * and neither is announced one by one. Changes collect in the room's pending set and one delayed
 * job per room and window (RECONNECT_FLUSH_MS) broadcasts a single room:presence batch, so N
 * rejoins in R rooms cost about R broadcasts instead of N × room size.
 */
export class PresenceService {
  constructor(
    private readonly config: Config,
    private readonly redis: RedisCommands,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
    private readonly jobs: Jobs,
    private readonly nsp: TetherNamespace,
    private readonly log: Logger,
  ) {}

  private get flushTtlMs(): number {
    // Long enough to cover a slow flush, short enough that a lost job (worker died between the
    // script and queue.add) only delays the next flush instead of blocking it.
    return this.config.sessions.reconnectFlushMs * 2 + 5000;
  }

  /** Marks the member away and queues it for the flush (nothing if stale, already away, or gone). */
  async markAway(roomId: string, clientId: string, epoch: number): Promise<void> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('markAway', [k.meta, k.members, k.pending, k.flush], [clientId, epoch, this.flushTtlMs]).catch((err: unknown) => {
      // NOT_IN_ROOM: evicted or left meanwhile; nothing to mark.
      if ((err as { code?: string }).code === 'NOT_IN_ROOM') return null;
      throw err;
    });
    if (!reply || reply[0] !== 1) return;
    await this.scheduleFlush(roomId, Number(reply[1]));
  }

  /** The member is back under `epoch`. Returns whether it had been away. */
  async markReturned(roomId: string, clientId: string, epoch: number): Promise<{ wasAway: boolean }> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('rejoinRoom', [k.meta, k.members, k.pending, k.flush], [clientId, epoch, this.flushTtlMs, this.config.rooms.ttlMs]);
    if (!reply) throw new TetherError('SESSION_REPLACED', 'a newer connection of this client already rejoined');
    await this.scheduleFlush(roomId, Number(reply![2]));
    return { wasAway: reply![1] === 1 };
  }

  private async scheduleFlush(roomId: string, generation: number): Promise<void> {
    if (!generation) return; // a flush is already scheduled for this window
    try {
      await this.jobs.schedule(FLUSH_QUEUE, jobId('flush', roomId, generation), { v: 1, roomId, generation }, this.config.sessions.reconnectFlushMs);
    } catch (err) {
      // Free the flag so the next presence change schedules a flush instead of waiting for expiry.
      await this.redis.del(this.keys.room(roomId).flush).catch(() => undefined);
      this.log.error({ roomId, err: (err as Error).message }, 'could not schedule presence flush');
    }
  }

  /** The flush job: one room:presence batch with every change since the last one. */
  async flush(roomId: string): Promise<PresenceBatch | null> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.run('flushPresence', [k.meta, k.members, k.pending, k.flush, k.log], [
      this.config.events.catchupMaxEvents,
      this.config.events.catchupTtlMs,
    ]);
    if (reply[0] !== 1) return null;
    const payload: PresenceBatch = { ...(JSON.parse(String(reply[2])) as Omit<PresenceBatch, 'seq'>), seq: Number(reply[1]) };
    metrics.reconnectFlushBatchSize.observe(Number(reply[3]));
    metrics.eventsPublished.inc({ source: 'system' });
    broadcast(this.nsp, 'room:presence', payload);
    return payload;
  }
}

import type { Config } from '../config/index.js';
import type { Fanout } from '../fanout/port.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { EventStore } from './store.js';

const READ_CHUNK = 500;

/**
 * Room heads: every ROOM_HEAD_INTERVAL_MS this worker reads, straight from Redis, the position
 * (incarnation, seq) of each room its own sockets are in, and tells those sockets — only this
 * worker's, never through the adapter — when a room's seq moved within the last two intervals.
 * A client connected all along thus learns of a lost broadcast (a worker died between append and
 * emit; the adapter's publish failed in a Redis blip) within an interval or two instead of at the
 * room's next event, and fills the gap with room:catchup. Quiet rooms cost one read and no emit.
 *
 * A timer per worker is right here (unlike cluster-wide schedules, which are BullMQ jobs): the
 * work is about this worker's sockets, and reading Redis directly is what makes it independent of
 * the pub/sub path whose losses it repairs.
 */
export class RoomHeads {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly seen = new Map<string, { seq: number; incarnation: string; changedAt: number }>();

  constructor(
    private readonly config: Config,
    private readonly store: EventStore,
    private readonly fanout: Fanout,
    private readonly log: Logger,
  ) {}

  start(): void {
    const every = this.config.events.headIntervalMs;
    if (every <= 0) return;
    this.timer = setInterval(() => {
      if (this.running) return; // a slow Redis must not stack ticks
      this.running = true;
      this.tick()
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'room heads failed'))
        .finally(() => (this.running = false));
    }, every);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One round: read every local room's head, emit where it moved recently. Exposed for tests. */
  async tick(now = Date.now()): Promise<number> {
    const rooms = [...this.fanout.localRooms()];
    const window = this.config.events.headIntervalMs * 2;
    let sent = 0;
    for (let i = 0; i < rooms.length; i += READ_CHUNK) {
      const chunk = rooms.slice(i, i + READ_CHUNK);
      const heads = await Promise.all(chunk.map((id) => this.store.head(id)));
      chunk.forEach((roomId, j) => {
        const head = heads[j];
        if (!head) return this.seen.delete(roomId);
        const { seq, incarnation } = head;
        const last = this.seen.get(roomId);
        // A room seen for the first time counts as changed: this worker cannot know what its
        // sockets missed before.
        if (!last || last.seq !== seq || last.incarnation !== incarnation) this.seen.set(roomId, { seq, incarnation, changedAt: now });
        if (seq > 0 && now - this.seen.get(roomId)!.changedAt <= window) {
          this.fanout.toRoomLocal(roomId, 'room:head', { roomId, incarnation, seq });
          sent++;
        }
      });
    }
    // Forget rooms this worker no longer holds.
    if (this.seen.size > rooms.length) {
      const held = new Set(rooms);
      for (const id of this.seen.keys()) if (!held.has(id)) this.seen.delete(id);
    }
    metrics.roomHeads.inc(sent);
    return sent;
  }
}

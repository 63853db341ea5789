import type { Config } from '../config/index.js';
import type { Fanout } from '../fanout/port.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { EventStore } from './store.js';

const READ_CHUNK = 500;

/**
 * Room heads: every ROOM_HEAD_INTERVAL_MS this worker reads, straight from Redis, the position
 * (incarnation, seq) of each room its own sockets are in, and tells those sockets — only this
 * worker's, never through the adapter — where the room is. A client connected all along thus
 * learns of a lost broadcast (a worker died between append and emit; the adapter's publish failed
 * in a Redis blip) within an interval or two instead of at the room's next event, and fills the
 * gap with room:catchup.
 *
 * When: once a room settles (its seq moved, then stayed for a whole interval), and while a room is
 * busy only if this worker fell behind it (the seq Redis had an interval ago was never broadcast to
 * this worker's connections: their stream stopped arriving here). A busy room needs no head: a
 * lost broadcast followed by the next event is a gap the client sees and fills by itself; only the
 * last events before a pause, or a stream that stopped, need one. Heads to every socket of every
 * busy room each interval used to cost about a tenth of a worker's deliveries, and their burst —
 * one emit per local socket at once — stalled the event loop. Quiet rooms cost one read and no emit.
 *
 * A timer per worker is right here (unlike cluster-wide schedules, which are BullMQ jobs): the
 * work is about this worker's sockets, and reading Redis directly is what makes it independent of
 * the pub/sub path whose losses it repairs.
 */
export class RoomHeads {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Per room: the head read at the last tick, and for how many ticks since it has not moved. */
  private readonly seen = new Map<string, { seq: number; incarnation: string; stillTicks: number }>();

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

  /** One round: read every local room's head, emit where a room settled or this worker fell behind. Exposed for tests. */
  async tick(): Promise<number> {
    const rooms = [...this.fanout.localRooms()];
    let sent = 0;
    for (let i = 0; i < rooms.length; i += READ_CHUNK) {
      const chunk = rooms.slice(i, i + READ_CHUNK);
      const heads = await Promise.all(chunk.map((id) => this.store.head(id)));
      chunk.forEach((roomId, j) => {
        const head = heads[j];
        if (!head) return this.seen.delete(roomId);
        const { seq, incarnation } = head;
        const last = this.seen.get(roomId);
        let emit = false;
        if (!last || last.incarnation !== incarnation) {
          // Seen for the first time (or a new life of the room): this worker cannot know what its
          // sockets missed before, so it counts as a move; the head follows once the room settles.
          this.seen.set(roomId, { seq, incarnation, stillTicks: 0 });
        } else if (last.seq !== seq) {
          // Busy. Behind: what Redis held a whole interval ago never reached this worker's stream.
          emit = this.fanout.deliveredSeq(roomId) < last.seq;
          last.seq = seq;
          last.stillTicks = 0;
        } else {
          last.stillTicks++;
          emit = last.stillTicks === 1; // settled: once
        }
        if (emit && seq > 0) {
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

import type { Config } from '../config/index.js';
import type { Conn, Fanout } from '../fanout/port.js';
import { metrics } from '../observability/metrics.js';
import type { CatchupResult, LogEntry, PublishResult, RoomEvent } from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import { encodeEventData } from './encode.js';
import type { EventStore } from './store.js';

export interface PublishRequest {
  roomId: string;
  type: string;
  data: unknown;
  /** clientId of the publisher, or `service:<name>` for the HTTP API. */
  from: string;
  /** Resends with the same key return the original seq and append nothing. */
  dedupKey: string | null;
  /** Code rooms require the publisher to be a member; program rooms and services do not. */
  requireMember: boolean;
  /** Whose budget the publish takes in the room (a user's devices share one); null: no per-room budgets (backend services). */
  budget: string | null;
  source: 'client' | 'http';
}

/** App events: sequenced, logged, deduplicated, broadcast; and reading the log back by position. */
export class EventService {
  constructor(
    private readonly config: Config,
    private readonly store: EventStore,
    private readonly fanout: Fanout,
  ) {}

  /** Rejects data over MAX_EVENT_DATA_BYTES (serialized); returns the serialized form. */
  encodeData(data: unknown): string {
    return encodeEventData(data, this.config.events.maxDataBytes);
  }

  async publish(req: PublishRequest): Promise<PublishResult> {
    const end = metrics.fanoutLatency.startTimer();
    const ts = Date.now();
    const dataJson = this.encodeData(req.data);
    // Built as text so Lua can splice the seq in without re-encoding app data.
    const payloadJson = `{"roomId":${JSON.stringify(req.roomId)},"type":${JSON.stringify(req.type)},"data":${dataJson},"from":${JSON.stringify(req.from)},"ts":${ts}}`;
    // The script broadcasts the event itself where the transport lets it (in seq order on every
    // worker); otherwise it is emitted below, once appended.
    const dropped = req.type === this.config.events.testDropBroadcastType;
    const broadcast = dropped ? null : this.fanout.fromScript(req.roomId, 'room:event');
    const appended = await this.store
      .append({ roomId: req.roomId, from: req.from, dedupKey: req.dedupKey, payloadJson, requireMember: req.requireMember, budget: req.budget, broadcast })
      .catch((err: unknown) => {
        if (err instanceof TetherError && err.code === 'RATE_LIMITED') metrics.rateLimited.inc({ kind: 'publish' });
        throw err;
      });
    if (appended.duplicate) {
      metrics.eventsDeduplicated.inc();
      // Re-broadcast the original (clients drop the copy by seq): the first attempt may have been
      // appended by a worker that died before broadcasting it.
      if (appended.original) this.fanout.toRoom(req.roomId, 'room:event', appended.original.payload as RoomEvent);
      return { seq: appended.seq, duplicate: true };
    }
    if (appended.trimmed > 0) metrics.eventLogTrimmed.inc(appended.trimmed);
    metrics.eventsPublished.inc({ source: req.source });
    if (!dropped && !broadcast) {
      const event: RoomEvent = { roomId: req.roomId, seq: appended.seq, type: req.type, data: req.data ?? null, from: req.from, ts };
      this.fanout.toRoom(req.roomId, 'room:event', event);
    }
    end();
    return { seq: appended.seq, duplicate: false };
  }

  async read(roomId: string, fromSeq: number, incarnation: string | undefined, limit?: number): Promise<CatchupResult> {
    const result = await this.store.read(roomId, fromSeq, incarnation, limit);
    metrics.catchupEvents.observe(result.events.length);
    return result;
  }

  /** Emits log entries to one connection under their own event names, exactly as they were broadcast. */
  replay(conn: Conn, entries: LogEntry[]): void {
    for (const entry of entries) (conn.emit as (ev: string, p: unknown) => void)(entry.name, entry.payload);
  }

  /**
   * Sends a connection that just joined a room's stream the events appended since the position it
   * was given (`fromSeq`, of `incarnation`): nothing falls between its state and the live stream.
   * Clients drop what they then also receive live, by seq. `late` (the join's, see Conn.joinRoom):
   * this worker was not yet receiving the room's broadcasts when the log was read, so once it is,
   * what was appended after this read is filled too.
   */
  async fill(conn: Conn, roomId: string, fromSeq: number, incarnation: string, late: Promise<void> | null = null): Promise<void> {
    const result = await this.store.read(roomId, fromSeq, incarnation);
    this.replay(conn, result.events);
    if (!late || !result.recovered) return;
    const filled = result.events.at(-1)?.seq ?? fromSeq;
    void late
      .then(() => (conn.connected ? this.fill(conn, roomId, filled, incarnation) : undefined))
      // A refill that fails leaves a gap the client fills itself (room:catchup at the next event or head).
      .catch(() => metrics.lateFillErrors.inc());
  }
}

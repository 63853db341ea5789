import type { Config } from '../config/index.js';
import type { PublishResult, RoomEvent } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import { encodeEventData } from './encode.js';
import { metrics } from '../observability/metrics.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';
import { broadcast } from '../rooms/broadcast.js';
import type { TetherNamespace } from '../transport/types.js';

export interface PublishRequest {
  roomId: string;
  type: string;
  data: unknown;
  /** clientId of the publisher, or `service:<name>` for the HTTP API. */
  from: string;
  /** Resends with the same key return the original seq and broadcast nothing. */
  dedupKey: string | null;
  /** Code rooms require the publisher to be a member; program rooms and services do not. */
  requireMember: boolean;
  /** Whose budget the publish takes in the room (a user's devices share one); null: no per-room budgets (backend services). */
  budget: string | null;
  source: 'client' | 'http';
}

/** App events: sequenced, logged, deduplicated, broadcast. */
export class EventService {
  constructor(
    private readonly config: Config,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
    private readonly nsp: TetherNamespace,
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
    const payload = `{"roomId":${JSON.stringify(req.roomId)},"type":${JSON.stringify(req.type)},"data":${dataJson},"from":${JSON.stringify(req.from)},"ts":${ts}}`;
    const k = this.keys.room(req.roomId);
    const l = this.config.limits;
    const e = this.config.events;
    const reply = await this.scripts
      .call('publish', [k.meta, k.members, k.log, k.dedup, k.dedupAge, k.publishBucket, k.publisherBucket(req.budget ?? '-')], [
        req.from, req.dedupKey ?? '', payload, e.catchupMaxEvents, e.catchupTtlMs, e.dedupTtlMs, this.config.rooms.ttlMs, req.requireMember ? 1 : 0,
        req.budget ? l.roomPublishRatePerSec : 0, l.roomPublishBurst, req.budget ? e.publishRatePerSec : 0, e.publishBurst,
      ])
      .catch((err: unknown) => {
        if (err instanceof TetherError && err.code === 'RATE_LIMITED') metrics.rateLimited.inc({ kind: 'publish' });
        throw err;
      });
    const seq = Number(reply![1]);
    if (reply![0] === 2) {
      metrics.eventsDeduplicated.inc();
      // Re-broadcast the original (clients drop the copy by seq): the first attempt may have been
      // appended by a worker that died before broadcasting it.
      if (reply![2]) broadcast(this.nsp, 'room:event', (JSON.parse(String(reply![2])) as { payload: RoomEvent }).payload);
      return { seq, duplicate: true };
    }
    const trimmed = Number(reply![2]);
    if (trimmed > 0) metrics.eventLogTrimmed.inc(trimmed);
    metrics.eventsPublished.inc({ source: req.source });
    const event: RoomEvent = { roomId: req.roomId, seq, type: req.type, data: req.data ?? null, from: req.from, ts };
    if (req.type !== this.config.events.testDropBroadcastType) broadcast(this.nsp, 'room:event', event);
    end();
    return { seq, duplicate: false };
  }
}

import type { Config } from '../config/index.js';
import type { CatchupResult, LogEntry } from '@tether/protocol';
import type { RedisCommands } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import { incarnationOf } from '../rooms/model.js';
import { broadcastArgs, type Scripts } from '../redis/scripts.js';
import type { ScriptBroadcast } from '../fanout/port.js';

export type Appended = { duplicate: false; seq: number; trimmed: number } | { duplicate: true; seq: number; original: LogEntry | null };

/** A room's event log over its scripts: appends with dedup and budgets, and reads by position. */
export class EventStore {
  constructor(
    private readonly config: Config,
    private readonly redis: RedisCommands,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
  ) {}

  /** The room's position (incarnation, seq); null when the room does not exist. */
  async head(roomId: string): Promise<{ seq: number; incarnation: string } | null> {
    const [seq, inc, createdAt] = await this.redis.hmGet(this.keys.room(roomId).meta, ['seq', 'inc', 'createdAt']);
    if (seq === null || seq === undefined) return null;
    return { seq: Number(seq), incarnation: incarnationOf({ inc: inc ?? '', createdAt: createdAt ?? '0' }) };
  }

  /**
   * Appends one room:event (payload JSON text without seq) unless its dedup key was seen.
   * `budget`: whose per-room publisher bucket it takes (null: no per-room budgets, for services).
   * `broadcast`: the script also broadcasts the appended event (not a duplicate) this way.
   * Throws RATE_LIMITED (with retryAfterMs), ROOM_NOT_FOUND, NOT_IN_ROOM.
   */
  async append(a: { roomId: string; from: string; dedupKey: string | null; payloadJson: string; requireMember: boolean; budget: string | null; broadcast: ScriptBroadcast | null }): Promise<Appended> {
    const k = this.keys.room(a.roomId);
    const e = this.config.events;
    const l = this.config.limits;
    const reply = (await this.scripts.call('publish', [...this.keys.roomState(a.roomId), k.log, k.dedup, k.dedupAge, k.publishBucket, k.publisherBucket(a.budget ?? '-')], [
      a.from, a.dedupKey ?? '', a.payloadJson, e.catchupMaxEvents, e.catchupTtlMs, e.dedupTtlMs, this.config.rooms.ttlMs, a.requireMember ? 1 : 0,
      a.budget ? l.roomPublishRatePerSec : 0, l.roomPublishBurst, a.budget ? e.publishRatePerSec : 0, e.publishBurst,
      ...broadcastArgs(a.broadcast),
    ]))!;
    if (reply[0] === 2) return { duplicate: true, seq: Number(reply[1]), original: reply[2] ? (JSON.parse(String(reply[2])) as LogEntry) : null };
    return { duplicate: false, seq: Number(reply[1]), trimmed: Number(reply[2]) };
  }

  /** Events after `fromSeq` (a page), if the log reaches back that far and the position is of this incarnation. */
  async read(roomId: string, fromSeq: number, incarnation: string | undefined, limit = this.config.events.catchupPageSize): Promise<CatchupResult> {
    const k = this.keys.room(roomId);
    const reply = (await this.scripts.call('catchup', [k.meta, k.log], [
      fromSeq, Math.min(limit, this.config.events.catchupPageSize), this.config.events.catchupTtlMs, incarnation ?? '',
    ]))!;
    const seq = Number(reply[1]);
    if (reply[0] !== 1) return { roomId, events: [], seq, incarnation: String(reply[2]), recovered: false, more: false };
    const raw = (reply[3] ?? []) as string[];
    return { roomId, events: raw.map((x) => JSON.parse(x) as LogEntry), seq, incarnation: String(reply[4]), recovered: true, more: reply[2] === 1 };
  }
}

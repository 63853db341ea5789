import type { Config } from '../config/index.js';
import type { CatchupResult, LogEntry } from '../protocol/events.js';
import { metrics } from '../observability/metrics.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';
import type { TetherSocket } from '../transport/types.js';

/**
 * Catch-up from a room's log: every event after the client's last seq, in seq order, or a plain
 * "the log does not reach back that far" (recovered: false) — never a partial replay.
 */
export class CatchupService {
  constructor(
    private readonly config: Config,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
  ) {}

  /** `incarnation` undefined: the caller's position is trusted to be of the current incarnation. */
  async read(roomId: string, fromSeq: number, incarnation: string | undefined, limit = this.config.events.catchupPageSize): Promise<CatchupResult> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('catchup', [k.meta, k.log], [
      fromSeq, Math.min(limit, this.config.events.catchupPageSize), this.config.events.catchupTtlMs, incarnation ?? '',
    ]);
    const seq = Number(reply![1]);
    if (reply![0] !== 1) return { roomId, events: [], seq, incarnation: String(reply![2]), recovered: false, more: false };
    const raw = (reply![3] ?? []) as string[];
    return { roomId, events: raw.map((e) => JSON.parse(e) as LogEntry), seq, incarnation: String(reply![4]), recovered: true, more: reply![2] === 1 };
  }

  /**
   * Sends a socket that was just admitted the events appended between its admission (the state it
   * was sent, at `fromSeq`) and its joining the Socket.IO room: nothing of a room reaches a socket
   * before it is admitted, and nothing falls between its state and the live stream. Clients drop
   * what they then also receive live, by seq.
   */
  async fill(socket: TetherSocket, roomId: string, fromSeq: number, incarnation: string): Promise<void> {
    const result = await this.read(roomId, fromSeq, incarnation);
    for (const entry of result.events) (socket.emit as (ev: string, p: unknown) => boolean)(entry.name, entry.payload);
  }

  /**
   * Replays missed events to one socket under their own event names, exactly as they were
   * broadcast, and records the recovery outcome. Returns null when a snapshot is needed instead.
   */
  async replay(socket: TetherSocket, roomId: string, lastSeq: number, incarnation: string | undefined): Promise<{ replayed: number; more: boolean; seq: number; incarnation: string } | null> {
    const result = await this.read(roomId, lastSeq, incarnation);
    if (!result.recovered) {
      metrics.recoveries.inc({ outcome: 'snapshot' });
      return null;
    }
    for (const entry of result.events) (socket.emit as (ev: string, p: unknown) => boolean)(entry.name, entry.payload);
    metrics.recoveries.inc({ outcome: 'recovered' });
    metrics.catchupEvents.observe(result.events.length);
    return { replayed: result.events.length, more: result.more, seq: result.seq, incarnation: result.incarnation };
  }
}

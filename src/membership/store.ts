import { webhookFilter, type Config } from '../config/index.js';
import { TetherError, type LogEntry, type Participant, type ParticipantLeft, type PresenceBatch, type RoomStatePayload } from '@tether/protocol';
import type { Keys } from '../redis/keys.js';
import { broadcastArgs, type Scripts } from '../redis/scripts.js';
import type { ScriptBroadcast } from '../fanout/port.js';
import { participant, roomState } from '../rooms/model.js';

export interface Admitted {
  /** Seq of the room:participant:joined to broadcast; 0 when the join is batched. */
  seq: number;
  self: Participant;
  state: RoomStatePayload;
  /** Announced in the room's next presence batch (the room had JOIN_BATCH_THRESHOLD members or more). */
  batched: boolean;
  /** >0: a flush must be scheduled under this generation. */
  flushGeneration: number;
}

/** What an admission found: admitted, already a member (the caller rejoins), or a password to check first. */
export type Admission = ({ kind: 'admitted' } & Admitted) | { kind: 'member' } | { kind: 'password'; passwordHash: string };

export type RejoinRead =
  | { mode: 'replay'; seq: number; incarnation: string; more: boolean; entries: LogEntry[] }
  | { mode: 'snapshot'; seq: number; incarnation: string; state: RoomStatePayload };

export interface Rejoined {
  /** The member had been away: its return is queued for the presence flush. */
  wasAway: boolean;
  /** >0: a flush must be scheduled under this generation. */
  flushGeneration: number;
  read: RejoinRead;
}

/**
 * Seats, presence and the positions members rejoin from, over their scripts: named arguments in,
 * typed results out. Every script takes the room's state keys first (one TTL rule refreshes them).
 */
export class MembershipStore {
  constructor(
    private readonly config: Config,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
  ) {}

  private get flushTtlMs(): number {
    // Long enough to cover a slow flush, short enough that a lost job (worker died between the
    // script and queue.add) only delays the next flush instead of blocking it.
    return this.config.sessions.reconnectFlushMs * 2 + 5000;
  }

  /**
   * Admits a member atomically (entry checks, existence, capacity, membership) and announces it: a
   * sequenced joined event, or — in a room of JOIN_BATCH_THRESHOLD members or more — the pending
   * set of the next presence batch. A room with a password admits only once `verifiedPasswordHash`
   * is its hash: until then the answer is the hash to check the password against. `broadcast`: the
   * script broadcasts the joined event. Throws ROOM_NOT_FOUND, ROOM_FULL, NOT_IN_ROOM (a program room).
   */
  async admit(roomId: string, m: { clientId: string; userId: string | null; name: string; epoch: number }, now: number, broadcast: ScriptBroadcast | null, verifiedPasswordHash = ''): Promise<Admission> {
    const e = this.config.events;
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('joinRoom', [...this.keys.roomState(roomId), k.log, k.hooks, k.flush], [
      m.clientId, m.userId ?? '', m.name, m.epoch, now, e.catchupMaxEvents, e.catchupTtlMs, this.config.rooms.ttlMs, webhookFilter(this.config),
      this.config.sessions.joinBatchThreshold, this.flushTtlMs, ...broadcastArgs(broadcast), verifiedPasswordHash,
    ]);
    if (!reply || reply[0] === 2) return { kind: 'member' };
    if (reply[0] === 3) throw new TetherError('NOT_IN_ROOM', 'program rooms are joined through the JWT rooms claim');
    if (reply[0] === 4) return { kind: 'password', passwordHash: String(reply[1]) };
    return {
      kind: 'admitted',
      seq: Number(reply[1]),
      self: participant(String(reply[2])),
      state: roomState(reply[3], reply[4], reply[5], now),
      batched: reply[6] === 1,
      flushGeneration: Number(reply[7] ?? 0),
    };
  }

  /**
   * Removes a member and appends room:participant:left. `evict` only removes a member still away
   * under `epoch`; `leave` refuses when a newer connection rejoined. null: stale (nothing done).
   * `broadcast`: the script broadcasts the left event.
   */
  async remove(roomId: string, clientId: string, how: { mode: 'leave' | 'evict' | 'kick'; epoch: number; reason: ParticipantLeft['reason'] }, broadcast: ScriptBroadcast | null): Promise<ParticipantLeft | null> {
    const e = this.config.events;
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('leaveRoom', [...this.keys.roomState(roomId), k.log, k.hooks, k.away], [
      clientId, how.mode, how.epoch, how.reason, e.catchupMaxEvents, e.catchupTtlMs, this.config.rooms.ttlMs, webhookFilter(this.config), ...broadcastArgs(broadcast),
    ]);
    if (!reply) return null;
    return { ...(JSON.parse(String(reply[2])) as Omit<ParticipantLeft, 'seq'>), seq: Number(reply[1]) };
  }

  /**
   * Marks the member away, queues it for the flush and enters it in the away set under `evictAt`
   * (when its grace period ends). Returns the flush generation to schedule (0: none needed).
   */
  async markAway(roomId: string, clientId: string, epoch: number, evictAt: number): Promise<{ flushGeneration: number } | null> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('markAway', [...this.keys.roomState(roomId), k.flush, k.away], [clientId, epoch, this.flushTtlMs, this.config.rooms.ttlMs, evictAt]);
    if (!reply || reply[0] !== 1) return null;
    return { flushGeneration: Number(reply[1]) };
  }

  /** Back online under `epoch`, and the events after `position` or the room's state, in one step. */
  async rejoin(roomId: string, a: { clientId: string; epoch: number; member: boolean; lastSeq?: number | undefined; incarnation?: string | undefined; now: number }): Promise<Rejoined | null> {
    const k = this.keys.room(roomId);
    const e = this.config.events;
    const reply = await this.scripts.call('rejoin', [...this.keys.roomState(roomId), k.flush, k.log, k.away], [
      a.clientId, a.epoch, a.member ? 1 : 0, this.flushTtlMs, this.config.rooms.ttlMs, a.lastSeq ?? '', a.incarnation ?? '', e.catchupPageSize, e.catchupTtlMs,
    ]);
    if (!reply) return null;
    const seq = Number(reply[3]);
    const incarnation = String(reply[4]);
    const read: RejoinRead =
      reply[5] === 'replay'
        ? { mode: 'replay', seq, incarnation, more: reply[6] === 1, entries: ((reply[7] ?? []) as string[]).map((x) => JSON.parse(x) as LogEntry) }
        : { mode: 'snapshot', seq, incarnation, state: roomState(reply[6], reply[7], reply[8], a.now) };
    return { wasAway: reply[1] === 1, flushGeneration: Number(reply[2]), read };
  }

  /**
   * Whom the eviction window must evict: members away whose grace period ended by `now` (at most
   * `limit`), with the epoch each is away under; when the next one's ends; whether more are due.
   */
  async dueAway(roomId: string, now: number, limit: number): Promise<{ due: { clientId: string; epoch: number }[]; nextEvictAt: number | null; more: boolean }> {
    const k = this.keys.room(roomId);
    const reply = (await this.scripts.run('dueAway', [k.members, k.away], [now, limit])) as [string[], string, number];
    const due: { clientId: string; epoch: number }[] = [];
    for (let i = 0; i < reply[0].length; i += 2) due.push({ clientId: String(reply[0][i]), epoch: Number(reply[0][i + 1]) });
    return { due, nextEvictAt: reply[1] === '' ? null : Number(reply[1]), more: reply[2] === 1 };
  }

  /** The batched presence flush: one room:presence with every change since the last one, or null. `broadcast`: the script broadcasts it. */
  async flush(roomId: string, broadcast: ScriptBroadcast | null): Promise<{ batch: PresenceBatch; changes: number } | null> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.run('flushPresence', [...this.keys.roomState(roomId), k.flush, k.log], [this.config.events.catchupMaxEvents, this.config.events.catchupTtlMs, ...broadcastArgs(broadcast)]);
    if (reply[0] !== 1) return null;
    return { batch: { ...(JSON.parse(String(reply[2])) as Omit<PresenceBatch, 'seq'>), seq: Number(reply[1]) }, changes: Number(reply[3]) };
  }
}

import { z } from 'zod';
import type { Config } from '../config/index.js';
import type { EventService } from '../events/service.js';
import type { Conn, Fanout } from '../fanout/port.js';
import { jobId, type JobKind, type Jobs } from '../jobs/queues.js';
import type { Limits } from '../limits/limits.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { JoinResult, RejoinResult, RoomStatePayload } from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import type { RoomService } from '../rooms/service.js';
import type { RoomStore } from '../rooms/store.js';
import type { SessionStore } from '../sessions/store.js';
import type { Webhooks } from '../webhooks/service.js';
import type { MembershipStore } from './store.js';

/** One eviction job per room and window (see `disconnected`). */
export const EVICT_WINDOW_QUEUE = 'evict-window';
/** One eviction job per member: what a previous version queued, still worked off during a rolling deploy. */
export const EVICT_QUEUE = 'evict';
export const FLUSH_QUEUE = 'flush';

/** A claim older than this whose client is not a member is a join that died half-way. */
const CLAIM_STALE_MS = 10_000;
/** Members one eviction job reads per pass (more due: the next window's job goes on), and evicts at once. */
const EVICT_READ = 500;
const EVICT_CONCURRENCY = 20;
/**
 * This process skips scheduling an eviction window it already scheduled only while the window is
 * further away than this: a job runs at its window's end by the clock of the worker that takes it,
 * so the margin covers clock skew between workers.
 */
const WINDOW_REUSE_MARGIN_MS = 1000;

export interface Position {
  lastSeq?: number | undefined;
  incarnation?: string | undefined;
}

/** What the handshake learned that the connection hook needs (program rooms, the room to rejoin, positions). */
export interface ConnectIntent {
  roomId?: string | undefined;
  lastSeq?: Record<string, number> | undefined;
  incarnations?: Record<string, string> | undefined;
}

/**
 * Membership: everything about a member's seat in one place — join, rejoin, leave, away, eviction
 * and the batched presence flush. Seats and presence live in Redis (membership/store.ts); this
 * service orders the steps so that a worker dying between any two of them leaves nothing that the
 * next step, a job or the reaper will not finish.
 */
export class MembershipService {
  /** Eviction windows this process scheduled (job id → window end), to skip re-adding them. */
  private readonly scheduledWindows = new Map<string, number>();

  constructor(
    private readonly config: Config,
    private readonly store: MembershipStore,
    private readonly sessions: SessionStore,
    private readonly roomStore: RoomStore,
    private readonly rooms: RoomService,
    private readonly events: EventService,
    private readonly limits: Limits,
    private readonly jobs: Jobs,
    private readonly fanout: Fanout,
    private readonly webhooks: Webhooks,
    private readonly log: Logger,
  ) {}

  /**
   * room:join. Order: the session claims the room (one code room per client, atomic; released if
   * admission fails) → admission (entry checks and the seat, atomic; a room with a password hands
   * out its hash first: an attempt is taken from the password budgets, the slow hash runs here,
   * and admission is asked again with the verified hash) → room:state → only now the connection
   * hears the room → the window between admission and that moment is filled from the log. A wrong
   * password never hears a thing; no event falls between the state and the stream.
   */
  async join(conn: Conn, input: { roomCode: string; password?: string | undefined; guestName?: string | undefined; stateEvent?: boolean | undefined }): Promise<JoinResult> {
    const { clientId, epoch, userId } = conn.data;
    const roomId = input.roomCode;
    if (conn.data.roomId && conn.data.roomId !== roomId) throw new TetherError('ALREADY_IN_ROOM', `already in room ${conn.data.roomId}; leave it first`);
    const name = userId ? conn.data.name : (input.guestName ?? conn.data.name);

    const { fresh } = await this.claim(clientId, epoch, roomId);
    // Whether this worker already hears the room, from before admission fixes the state's seq.
    const hold = this.fanout.streamHold(roomId);
    const broadcast = this.fanout.fromScript(roomId, 'room:participant:joined', { connId: conn.id });
    const member = { clientId, userId, name, epoch };
    let admission;
    try {
      admission = await this.store.admit(roomId, member, Date.now(), broadcast);
      if (admission.kind === 'password') {
        await this.rooms.checkPassword(input.password, admission.passwordHash, () => this.limits.passwordAttempt(roomId, clientId, conn.address));
        admission = await this.store.admit(roomId, member, Date.now(), broadcast, admission.passwordHash);
        // The password was changed between the two reads: the one checked is no longer the room's.
        if (admission.kind === 'password') throw new TetherError('INVALID_PASSWORD');
      }
    } catch (err) {
      // A claim taken for a join that is refused is released before the error is answered.
      if (fresh) await this.sessions.clearRoom(clientId, roomId, epoch);
      throw err;
    }
    const admitted = admission.kind === 'admitted' ? admission : null;
    if (!admitted) {
      // Already a member (a reload, a second tab after takeover): a rejoin, answered like a join
      // (room:state and the ack), not with a second copy as room:state_snapshot.
      const { snapshot } = await this.rejoin(conn, roomId, {}, { emitSnapshot: false });
      const state = snapshot ?? (await this.roomStore.snapshot(roomId));
      const self = state.participants.find((p) => p.clientId === clientId);
      if (!self) throw new TetherError('NOT_IN_ROOM');
      if (input.stateEvent !== false) conn.emit('room:state', state);
      return { ...state, self };
    }
    metrics.roomsJoined.inc();
    this.webhooks.relayRoomSoon(roomId);
    conn.data.roomId = roomId;
    if (admitted.batched) {
      // A large room hears of this join in the window's presence batch, with the others of the window.
      if (admitted.flushGeneration > 0) await this.scheduleFlush(roomId, admitted.flushGeneration);
    } else {
      metrics.eventsPublished.inc({ source: 'system' });
      if (!broadcast) this.fanout.toRoom(roomId, 'room:participant:joined', { roomId, seq: admitted.seq, participant: admitted.self }, { connId: conn.id });
    }
    // The state goes out before the stream (the ack carries it too; `stateEvent: false` keeps it to the ack).
    if (input.stateEvent !== false) conn.emit('room:state', admitted.state);
    const { late } = await conn.joinRoom(roomId);
    // The window between admission and this moment. When this worker held the room all along
    // (from before admission was sent), every broadcast to it that arrived meanwhile was observed:
    // if none is past the state's seq, everything after the state reaches the connection live and
    // there is nothing to read (in a busy room, most joins). Otherwise read the window from the log.
    const heardAllAlong = !late && hold !== null && this.fanout.streamHold(roomId) === hold && this.fanout.deliveredSeq(roomId) <= admitted.state.seq;
    if (heardAllAlong) metrics.joinFillsSkipped.inc();
    else await this.events.fill(conn, roomId, admitted.state.seq, admitted.state.incarnation, late);
    return { ...admitted.state, self: admitted.self };
  }

  /**
   * Claims `roomId` as the session's one code room before admission, so two joins of one client
   * cannot both succeed. A claim on another room stands while the client is a member there, or
   * while that join may still be in flight; the leftover of a join that died half-way (not a
   * member, older than CLAIM_STALE_MS) is cleared. `fresh`: the caller releases it if admission fails.
   */
  private async claim(clientId: string, epoch: number, roomId: string): Promise<{ fresh: boolean }> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const result = await this.sessions.claimRoom(clientId, epoch, roomId, Date.now());
      if (!result) throw new TetherError('SESSION_REPLACED');
      if (result.claimed) return { fresh: !result.alreadyThisRoom };
      if ((await this.roomStore.isMember(result.otherRoomId, clientId)) || Date.now() - result.claimedAt < CLAIM_STALE_MS) {
        throw new TetherError('ALREADY_IN_ROOM', `already in room ${result.otherRoomId}; leave it first`);
      }
      await this.sessions.clearRoom(clientId, result.otherRoomId);
    }
    throw new TetherError('ALREADY_IN_ROOM');
  }

  /**
   * A rejoin after a reconnect (room:rejoin, or the handshake's auth.roomId / program rooms): one
   * script marks the member online and reads the events after the client's position or the room's
   * state (and takes it out of the room's away set, so no eviction window evicts it); then,
   * concurrently, the connection joins the stream and the window is filled, and a presence flush
   * is scheduled if it had been away. Idempotent.
   */
  async rejoin(conn: Conn, roomId: string, position: Position, opts: { emitSnapshot: boolean } = { emitSnapshot: true }): Promise<{ result: RejoinResult; snapshot?: RoomStatePayload }> {
    const { clientId, epoch } = conn.data;
    const program = conn.data.programRooms.includes(roomId);
    if (!program && conn.data.roomId !== roomId) await this.claim(clientId, epoch, roomId);
    const rejoinScript = () => this.store.rejoin(roomId, { clientId, epoch, member: !program, lastSeq: position.lastSeq, incarnation: position.incarnation, now: Date.now() });
    let r;
    try {
      try {
        r = await rejoinScript();
      } catch (err) {
        // The session announcement goes out before the connection hook creates the program rooms
        // the JWT names, and the client rejoins them as soon as it reads it: on a Cluster the
        // announcement's user-stream SSUBSCRIBE delays the creation by a round trip, and the rejoin
        // can get there first. A program room exists as soon as a JWT names it, so create it here.
        if (!(program && err instanceof TetherError && err.code === 'ROOM_NOT_FOUND')) throw err;
        await this.rooms.ensureProgramRoom(roomId);
        r = await rejoinScript();
      }
    } catch (err) {
      if (err instanceof TetherError && err.code === 'NOT_IN_ROOM') metrics.reconnections.inc({ outcome: 'not_in_room' });
      throw err;
    }
    if (!r) throw new TetherError('SESSION_REPLACED', 'a newer connection of this client already rejoined');
    if (!program) conn.data.roomId = roomId;

    // Nothing to cancel: the script took the member out of the away set, so its window's eviction
    // job finds nothing to do for it.
    const housekeeping: Promise<unknown>[] = [];
    if (r.flushGeneration > 0) housekeeping.push(this.scheduleFlush(roomId, r.flushGeneration));

    const read = r.read;
    const { late } = await conn.joinRoom(roomId);
    if (read.mode === 'replay') {
      this.events.replay(conn, read.entries);
      // Paged: the client pages on with room:catchup up to the head, which covers the window too.
      if (!read.more) housekeeping.push(this.events.fill(conn, roomId, read.seq, read.incarnation, late));
      await Promise.all(housekeeping);
      metrics.reconnections.inc({ outcome: 'recovered' });
      metrics.recoveries.inc({ outcome: 'recovered' });
      metrics.catchupEvents.observe(read.entries.length);
      return { result: { roomId, recovered: true, replayed: read.entries.length, more: read.more, seq: read.seq, incarnation: read.incarnation } };
    }
    if (opts.emitSnapshot) conn.emit('room:state_snapshot', { ...read.state, recovered: false });
    housekeeping.push(this.events.fill(conn, roomId, read.seq, read.incarnation, late));
    await Promise.all(housekeeping);
    metrics.reconnections.inc({ outcome: 'snapshot' });
    if (position.lastSeq !== undefined) metrics.recoveries.inc({ outcome: 'snapshot' });
    return { result: { roomId, recovered: false, replayed: 0, more: false, seq: read.seq, incarnation: read.incarnation }, snapshot: read.state };
  }

  /** room:leave: leaves the code room at once. */
  async leave(conn: Conn, roomId: string | undefined): Promise<{ roomId: string }> {
    const target = roomId ?? conn.data.roomId;
    if (!target) throw new TetherError('NOT_IN_ROOM');
    await conn.leaveRoom(target);
    if (conn.data.roomId === target) conn.data.roomId = null;
    if (!(await this.removeNow(target, conn.data.clientId, conn.data.epoch))) throw new TetherError('SESSION_REPLACED');
    return { roomId: target };
  }

  /** Removes the member now. false: a newer connection of the client rejoined meanwhile (its seat stays). */
  private async removeNow(roomId: string, clientId: string, epoch: number): Promise<boolean> {
    const broadcast = this.fanout.fromScript(roomId, 'room:participant:left');
    const left = await this.store.remove(roomId, clientId, { mode: 'leave', epoch, reason: 'left' }, broadcast);
    if (!left) return false;
    metrics.eventsPublished.inc({ source: 'system' });
    if (!broadcast) this.fanout.toRoom(roomId, 'room:participant:left', left);
    this.webhooks.relayRoomSoon(roomId);
    await this.sessions.clearRoom(clientId, roomId);
    return true;
  }

  /**
   * The connection of (clientId, epoch) is gone: from its own disconnect handler, or found by the
   * reaper on a worker that died without running handlers. A deliberate client disconnect leaves
   * at once; anything else marks the member away and makes sure the eviction job of the window its
   * grace period ends in exists. Idempotent, and a replaced connection finds the epoch moved on
   * and does nothing.
   *
   * Evictions are batched: one delayed job per room and EVICT_WINDOW_MS window, not one per
   * member, so a storm of 2,500 drops schedules a job per room and window, and a rejoin cancels
   * nothing (it leaves the room's away set, which is what the job reads).
   */
  async disconnected(clientId: string, epoch: number, reason: string): Promise<void> {
    const session = await this.sessions.disconnect(clientId, epoch, Date.now());
    if (!session?.roomId) return;
    const roomId = session.roomId;
    if (reason === 'client namespace disconnect') {
      await this.removeNow(roomId, clientId, epoch).catch((err: unknown) => {
        if (!(err instanceof TetherError && (err.code === 'NOT_IN_ROOM' || err.code === 'ROOM_NOT_FOUND'))) throw err;
      });
      return;
    }
    // The window's job is scheduled before the member is marked away: a member can then never be
    // away without a pending eviction, even if this process dies between the two steps. (A job
    // that finds nobody due is a no-op; the id is deterministic, so a repeated call adds nothing.)
    const evictAt = Date.now() + this.config.sessions.gracePeriodMs;
    await this.scheduleEviction(roomId, this.windowEnd(evictAt));
    const away = await this.store.markAway(roomId, clientId, epoch, evictAt).catch((err: unknown) => {
      // NOT_IN_ROOM: evicted or left meanwhile; nothing to mark.
      if (err instanceof TetherError && err.code === 'NOT_IN_ROOM') return null;
      throw err;
    });
    if (away?.flushGeneration) await this.scheduleFlush(roomId, away.flushGeneration);
  }

  /** A room's members with their status, and the position (seq, incarnation) that list reflects. */
  async members(roomId: string): Promise<{ roomId: string; seq: number; incarnation: string; members: RoomStatePayload['participants'] }> {
    const state = await this.roomStore.snapshot(roomId);
    return { roomId, seq: state.seq, incarnation: state.incarnation, members: state.participants };
  }

  /**
   * A backend removes a member now, whatever its status: the others get room:participant:left
   * (reason kicked), the member's connection — wherever it lives — gets room:closed and stops
   * hearing the room, and its session forgets the room.
   */
  async kick(roomId: string, clientId: string): Promise<{ roomId: string; clientId: string; seq: number }> {
    // Broadcast here, not by the script: the kicked connection hears it before room:closed.
    const left = await this.store.remove(roomId, clientId, { mode: 'kick', epoch: 0, reason: 'kicked' }, null);
    if (!left) throw new TetherError('NOT_IN_ROOM');
    metrics.eventsPublished.inc({ source: 'system' });
    this.fanout.toRoom(roomId, 'room:participant:left', left);
    this.webhooks.relayRoomSoon(roomId);
    const conn = await this.sessions.connection(clientId);
    if (conn) {
      this.fanout.toConnection(conn.socketId, 'room:closed', { roomId, reason: 'kicked' });
      this.fanout.removeFromRoom(roomId, conn.socketId);
    }
    await this.sessions.clearRoom(clientId, roomId);
    return { roomId, clientId, seq: left.seq };
  }

  /**
   * Deletes a room: every member is told room:closed (reason deleted) and taken out of its stream,
   * every key of the room goes, and the members' sessions forget it. Jobs still pending for the
   * room find nothing and do nothing.
   */
  async close(roomId: string): Promise<{ roomId: string; members: number }> {
    const members = await this.roomStore.delete(roomId);
    if (!members) throw new TetherError('ROOM_NOT_FOUND');
    this.webhooks.relayRoomSoon(roomId);
    this.fanout.removeFromRoom(roomId, undefined, { roomId, reason: 'deleted' });
    await Promise.all(members.map((clientId) => this.sessions.clearRoom(clientId, roomId)));
    this.log.info({ roomId, members: members.length }, 'room deleted');
    return { roomId, members: members.length };
  }

  /** The end of the eviction window `evictAt` falls in. */
  private windowEnd(evictAt: number): number {
    const w = this.config.sessions.evictWindowMs;
    return Math.ceil(evictAt / w) * w;
  }

  /** Makes sure the room's eviction job for the window ending at `end` exists. */
  private async scheduleEviction(roomId: string, end: number): Promise<void> {
    const id = jobId('evict', roomId, end);
    const now = Date.now();
    if (this.scheduledWindows.has(id) && end - now > WINDOW_REUSE_MARGIN_MS) return;
    await this.jobs.schedule(EVICT_WINDOW_QUEUE, id, { v: 1, roomId, windowEnd: end }, Math.max(0, end - now), { room: roomId });
    this.scheduledWindows.set(id, end);
    if (this.scheduledWindows.size > 4096) for (const [k, e] of this.scheduledWindows) if (e - now <= WINDOW_REUSE_MARGIN_MS) this.scheduledWindows.delete(k);
  }

  /**
   * The eviction window's job: evicts every member of the room whose grace period ended (by this
   * worker's clock). Whoever is still away for later — normally covered by its own window's job —
   * gets the next window's job too: the net for a window scheduled by a clock ahead of this one,
   * and the continuation when more are due than one read takes.
   */
  async evictWindow(roomId: string, windowEnd: number): Promise<'done' | 'stale'> {
    const now = Date.now();
    const { due, nextEvictAt, more } = await this.store.dueAway(roomId, now, EVICT_READ);
    for (let i = 0; i < due.length; i += EVICT_CONCURRENCY) {
      await Promise.all(due.slice(i, i + EVICT_CONCURRENCY).map((m) => this.evict({ roomId, clientId: m.clientId, epoch: m.epoch }, { relay: false })));
    }
    // The room's outbox once for the whole window, not once per member. Awaited, and on every run:
    // a relay that fails retries the job, whose second run finds nobody due but relays again.
    await this.webhooks.relayRoom(roomId);
    const next = more ? now : nextEvictAt;
    if (next !== null) await this.scheduleEviction(roomId, Math.max(this.windowEnd(next), windowEnd + this.config.sessions.evictWindowMs));
    return due.length > 0 ? 'done' : 'stale';
  }

  /**
   * Evicts one member still away under `epoch`. 'stale' when the client came back or the epoch
   * moved on. `relay: false`: the caller relays the room's webhook outbox once for several.
   */
  async evict(job: { clientId: string; roomId: string; epoch: number }, opts: { relay: boolean } = { relay: true }): Promise<'done' | 'stale'> {
    const broadcast = this.fanout.fromScript(job.roomId, 'room:participant:left');
    const left = await this.store.remove(job.roomId, job.clientId, { mode: 'evict', epoch: job.epoch, reason: 'evicted' }, broadcast).catch((err: unknown) => {
      if (err instanceof TetherError && (err.code === 'NOT_IN_ROOM' || err.code === 'ROOM_NOT_FOUND')) return null;
      throw err;
    });
    if (!left) return 'stale';
    metrics.graceEvictions.inc();
    metrics.eventsPublished.inc({ source: 'system' });
    if (!broadcast) this.fanout.toRoom(job.roomId, 'room:participant:left', left);
    // Awaited here (not in the background): the job retries if the relay fails.
    if (opts.relay) await this.webhooks.relayRoom(job.roomId);
    await this.sessions.clearRoom(job.clientId, job.roomId, job.epoch);
    this.log.info({ roomId: job.roomId, clientId: job.clientId, epoch: job.epoch }, 'evicted after grace period');
    return 'done';
  }

  /** The flush job: one room:presence batch with every change since the last one. */
  async flush(roomId: string): Promise<'done' | 'stale'> {
    const broadcast = this.fanout.fromScript(roomId, 'room:presence');
    const flushed = await this.store.flush(roomId, broadcast);
    if (!flushed) return 'stale';
    metrics.reconnectFlushBatchSize.observe(flushed.changes);
    metrics.eventsPublished.inc({ source: 'system' });
    if (!broadcast) this.fanout.toRoom(roomId, 'room:presence', flushed.batch);
    return 'done';
  }

  private async scheduleFlush(roomId: string, generation: number): Promise<void> {
    try {
      await this.jobs.schedule(FLUSH_QUEUE, jobId('flush', roomId, generation), { v: 1, roomId, generation }, this.config.sessions.reconnectFlushMs, { room: roomId });
    } catch (err) {
      // The flag (set by the script) expires by itself, so the next presence change schedules a
      // flush; a dropped flush only delays an announcement.
      this.log.error({ roomId, err: (err as Error).message }, 'could not schedule presence flush');
    }
  }

  /**
   * Connection hook: program rooms (from the JWT presented now, so a revoked room is simply not
   * rejoined) and the code room the handshake asked to rejoin.
   */
  async onConnected(conn: Conn, intent: ConnectIntent): Promise<void> {
    // Each room on its own: one that fails must not cost the others (or the hooks after this one).
    const each = async (roomId: string, work: () => Promise<void>) => {
      try {
        await work();
      } catch (err) {
        if (err instanceof TetherError) conn.emit('room:error', { ...err.toBody(), roomId });
        else this.log.error({ err, roomId, clientId: conn.data.clientId }, 'automatic rejoin failed');
      }
    };
    for (const roomId of conn.data.programRooms) {
      await each(roomId, async () => {
        await this.rooms.ensureProgramRoom(roomId);
        const lastSeq = intent.lastSeq?.[roomId];
        if (lastSeq !== undefined) conn.emit('room:rejoined', (await this.rejoin(conn, roomId, { lastSeq, incarnation: intent.incarnations?.[roomId] })).result);
        else await conn.joinRoom(roomId);
      });
    }
    const roomId = intent.roomId;
    if (roomId && !conn.data.programRooms.includes(roomId)) {
      await each(roomId, async () => {
        const { result } = await this.rejoin(conn, roomId, { lastSeq: intent.lastSeq?.[roomId], incarnation: intent.incarnations?.[roomId] });
        conn.emit('room:rejoined', result);
      });
    }
  }

  jobKinds(): JobKind<z.ZodType>[] {
    return [
      {
        queue: EVICT_WINDOW_QUEUE,
        schema: z.object({ v: z.literal(1), roomId: z.string(), windowEnd: z.number().int() }),
        concurrency: 50,
        perRoom: true,
        process: (job: { roomId: string; windowEnd: number }) => this.evictWindow(job.roomId, job.windowEnd),
      },
      {
        // Per-member jobs of a previous version: a separate queue, so that version's workers never
        // take (and drop as invalid) a window job during a rolling deploy.
        queue: EVICT_QUEUE,
        schema: z.object({ v: z.literal(1), clientId: z.string(), roomId: z.string(), epoch: z.number().int() }),
        concurrency: 50,
        perRoom: true,
        process: (job: { clientId: string; roomId: string; epoch: number }) => this.evict(job),
        // Nothing new arrives here: BullMQ's default idle poll (5 s) instead of 1 s, so the queue
        // costs an idle worker a fifth of the Redis commands.
        worker: { drainDelay: 5 },
      },
      {
        queue: FLUSH_QUEUE,
        schema: z.object({ v: z.literal(1), roomId: z.string(), generation: z.number().int() }),
        concurrency: 50,
        perRoom: true,
        process: (job: { roomId: string }) => this.flush(job.roomId),
      },
    ] as JobKind<z.ZodType>[];
  }
}

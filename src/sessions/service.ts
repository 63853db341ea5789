import { randomUUID } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { socketRoom, type RejoinResult, type RoomStatePayload } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import type { Keys } from '../redis/keys.js';
import type { RedisCommands } from '../redis/client.js';
import type { Scripts } from '../redis/scripts.js';
import type { CatchupService } from '../catchup/service.js';
import type { PresenceService } from '../presence/service.js';
import type { RoomService } from '../rooms/service.js';
import { jobId, type Jobs } from '../jobs/queues.js';
import type { TetherNamespace, TetherSocket } from '../transport/types.js';
import { hashSessionToken, issueSessionToken } from './tokens.js';

export const EVICT_QUEUE = 'evict';

/** A claim older than this whose client is not a member is a join that died half-way. */
const CLAIM_STALE_MS = 10_000;

export interface ConnectResult {
  clientId: string;
  epoch: number;
  /** The worker instance whose node index holds this socket (see NodeLiveness). */
  nodeInstance: string;
  sessionToken?: string;
}

/** Which worker process instance new sockets belong to (changes when the worker fences itself). */
export interface NodeInstance {
  readonly instance: string;
}

/**
 * Sessions: clientId identity across reconnects and workers. Redis holds the connection map
 * (clientId → socketId, nodeId, userId, roomId, epoch); every (re)connect bumps the epoch, and
 * everything scheduled under an older epoch becomes a no-op.
 */
export class SessionService {
  constructor(
    private readonly config: Config,
    private readonly redis: RedisCommands,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
    private readonly jobs: Jobs,
    private readonly nsp: TetherNamespace,
    private readonly rooms: RoomService,
    private readonly presence: PresenceService,
    private readonly catchup: CatchupService,
    private readonly node: NodeInstance,
    private readonly log: Logger,
  ) {}

  private readonly inflight = new Set<Promise<unknown>>();

  /** Runs disconnect work that a clean stop must wait for (see settle()). */
  track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    void work.finally(() => this.inflight.delete(work)).catch(() => undefined);
    return work;
  }

  /** Waits until every tracked disconnect has been recorded, or the deadline passed. Returns how many are left. */
  async settle(deadline: number): Promise<number> {
    while (this.inflight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    }
    return this.inflight.size;
  }

  /**
   * Binds a new socket to its clientId. Refuses a known clientId presented without its session
   * token (or with another user's JWT). If the clientId still has a live socket anywhere, that
   * socket is told session:replaced and closed after TAKEOVER_GRACE_MS by the worker that holds it.
   */
  async connect(socket: TetherSocket, auth: { clientId?: string; sessionToken?: string }, userId: string | null): Promise<ConnectResult> {
    const clientId = auth.clientId ?? randomUUID();
    const fresh = issueSessionToken();
    const nodeInstance = this.node.instance;
    const reply = await this.scripts.call('sessionConnect', [this.keys.session(clientId)], [
      auth.sessionToken ? hashSessionToken(auth.sessionToken) : '', fresh.hash, userId ?? '', socket.id, nodeInstance, Date.now(), this.config.sessions.ttlMs,
    ]);
    const [, epoch, issued, prevSocketId, , prevStatus] = reply!;
    if (prevStatus === 'connected' && prevSocketId && prevSocketId !== socket.id) {
      metrics.takeovers.inc();
      this.replace(String(prevSocketId), clientId, Number(epoch));
    }
    await this.redis.hSet(this.keys.nodeConnections(nodeInstance), clientId, String(epoch));
    metrics.connections.inc({ kind: issued === 1 ? 'new' : 'reconnect' });
    return {
      clientId,
      epoch: Number(epoch),
      nodeInstance,
      ...(issued === 1 ? { sessionToken: fresh.token } : {}),
    };
  }

  /** Replaces the socket wherever it lives: locally at once, on other workers via the adapter. */
  replace(socketId: string, clientId: string, epoch: number): void {
    if (!this.replaceLocal(socketId, clientId)) this.nsp.serverSideEmit('session:replace', { socketId, clientId, epoch });
  }

  /** Handles a replacement for a socket of this worker. Returns false when the socket is not here. */
  replaceLocal(socketId: string, clientId: string): boolean {
    const old = this.nsp.sockets.get(socketId);
    if (!old) return false;
    old.data.replaced = true;
    old.emit('session:replaced', { clientId, reason: 'takeover' });
    // The timer lives on the worker that holds the socket: if this worker dies, the socket dies
    // with it, so no timer anywhere else is needed (or correct).
    setTimeout(() => old.disconnect(true), this.config.sessions.takeoverGraceMs).unref();
    return true;
  }

  /**
   * A socket closed. Explicit client disconnects leave the room at once; anything else (network
   * drop, ping timeout, worker drain) marks the member away and schedules the grace eviction.
   * A replaced socket finds the epoch moved on and does nothing.
   */
  async disconnect(socket: TetherSocket, reason: string): Promise<void> {
    const { clientId, epoch, nodeInstance } = socket.data;
    await this.disconnected(clientId, epoch, reason);
    // Last: until the disconnect is fully recorded, the socket stays in this node's index, so if
    // this worker dies half-way the reaper runs the (idempotent) rest.
    await this.scripts.run('nodeConnRemove', [this.keys.nodeConnections(nodeInstance)], [clientId, epoch]);
  }

  /**
   * The connection of (clientId, epoch) is gone: from its own disconnect handler, or found by the
   * reaper on a worker that died without running handlers (SIGKILL, OOM, lost host). Idempotent:
   * running it twice for one (clientId, epoch) changes nothing more.
   */
  async disconnected(clientId: string, epoch: number, reason: string): Promise<void> {
    const reply = await this.scripts.run('sessionDisconnect', [this.keys.session(clientId)], [epoch, Date.now(), this.config.sessions.idleTtlMs]);
    if (reply[0] !== 1 || !reply[1]) return;
    const roomId = String(reply[1]);
    if (reason === 'client namespace disconnect') {
      await this.leave(roomId, clientId, epoch, 'left');
      return;
    }
    // The eviction is scheduled before the member is marked away: a member can then never be
    // away without a pending eviction, even if this process dies between the two steps. (A job
    // that fires while the member is still online under this epoch is a no-op; the id is
    // deterministic, so a repeated call adds nothing.)
    await this.jobs.schedule(EVICT_QUEUE, jobId('evict', clientId, epoch), { v: 1, clientId, roomId, epoch }, this.config.sessions.gracePeriodMs);
    await this.presence.markAway(roomId, clientId, epoch);
  }

  /**
   * Leaves the code-joined room now (room:leave, or a deliberate client disconnect). Returns false
   * when a newer connection of the client rejoined meanwhile: its seat and session stay.
   */
  async leave(roomId: string, clientId: string, epoch: number, reason: 'left'): Promise<boolean> {
    const left = await this.rooms.remove(roomId, clientId, { mode: 'leave', epoch, reason });
    if (!left) return false;
    await this.scripts.run('sessionClearRoom', [this.keys.session(clientId)], [roomId, '']);
    return true;
  }

  /** The grace-period job. Returns 'stale' when the client came back or the epoch moved on. */
  async evict(job: { clientId: string; roomId: string; epoch: number }): Promise<'done' | 'stale'> {
    const left = await this.rooms.remove(job.roomId, job.clientId, { mode: 'evict', epoch: job.epoch, reason: 'evicted' }).catch((err: unknown) => {
      if (err instanceof TetherError && (err.code === 'NOT_IN_ROOM' || err.code === 'ROOM_NOT_FOUND')) return null;
      throw err;
    });
    if (!left) return 'stale';
    metrics.graceEvictions.inc();
    await this.scripts.run('sessionClearRoom', [this.keys.session(job.clientId)], [job.roomId, job.epoch]);
    this.log.info({ roomId: job.roomId, clientId: job.clientId, epoch: job.epoch }, 'evicted after grace period');
    return 'done';
  }

  /**
   * Claims `roomId` as the session's one code-joined room before admission (atomic in the session
   * hash), so two joins of one client cannot both succeed. Returns whether the claim is new (the
   * caller releases it with releaseRoom if admission then fails). A claim on another room stands
   * while the client is a member there, or while that join may still be in flight; a leftover of a
   * join that died half-way (not a member, older than CLAIM_STALE_MS, or the room is gone) is
   * cleared.
   */
  async claimRoom(clientId: string, epoch: number, roomId: string): Promise<{ fresh: boolean }> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const reply = await this.scripts.call('sessionClaimRoom', [this.keys.session(clientId)], [roomId, epoch, Date.now()]);
      if (!reply) throw new TetherError('SESSION_REPLACED');
      if (reply[0] === 1) return { fresh: reply[1] !== 1 };
      const other = String(reply[1]);
      const claimedAt = Number(reply[2]);
      if ((await this.rooms.isMember(other, clientId)) || Date.now() - claimedAt < CLAIM_STALE_MS) {
        throw new TetherError('ALREADY_IN_ROOM', `already in room ${other}; leave it first`);
      }
      await this.scripts.run('sessionClearRoom', [this.keys.session(clientId)], [other, '']);
    }
    throw new TetherError('ALREADY_IN_ROOM');
  }

  /** Gives up a claim whose admission failed (only if the session still claims that room at this epoch). */
  async releaseRoom(clientId: string, epoch: number, roomId: string): Promise<void> {
    await this.scripts.run('sessionClearRoom', [this.keys.session(clientId)], [roomId, epoch]);
  }

  /** Records the code-joined room in the connection map. */
  async setRoom(clientId: string, roomId: string): Promise<void> {
    await this.redis.hSet(this.keys.session(clientId), 'roomId', roomId);
  }

  /** The code-joined room of a session, if the client is still a member of it. */
  async currentRoom(clientId: string): Promise<string | null> {
    const roomId = await this.redis.hGet(this.keys.session(clientId), 'roomId');
    if (!roomId) return null;
    if (await this.rooms.isMember(roomId, clientId)) return roomId;
    // Evicted, left elsewhere or expired: the map only lagged behind.
    await this.scripts.run('sessionClearRoom', [this.keys.session(clientId)], [roomId, '']);
    return null;
  }

  /**
   * Rejoin after a reconnect: re-verifies membership (code rooms: still a member; program rooms:
   * still in the JWT claim), joins the Socket.IO room *before* reading the log so no event can fall
   * between the read and the live stream, then replays from lastSeq or sends a snapshot.
   * Idempotent: rejoining a room the socket is already in answers the same way again.
   */
  async rejoin(
    socket: TetherSocket,
    roomId: string,
    position: { lastSeq?: number | undefined; incarnation?: string | undefined },
    opts: { emitSnapshot: boolean } = { emitSnapshot: true },
  ): Promise<{ result: RejoinResult; snapshot?: RoomStatePayload }> {
    const { clientId, epoch } = socket.data;
    const program = socket.data.programRooms.includes(roomId);
    if (!program) {
      let returned;
      try {
        returned = await this.presence.markReturned(roomId, clientId, epoch);
      } catch (err) {
        if (err instanceof TetherError && err.code === 'NOT_IN_ROOM') metrics.reconnections.inc({ outcome: 'not_in_room' });
        throw err;
      }
      if (returned.wasAway) {
        // The pending eviction is now a no-op (member epoch changed); removing it just saves work.
        const previous = this.previousEvictions(clientId, epoch);
        await Promise.all(previous.map((id) => this.jobs.cancel(EVICT_QUEUE, id)));
      }
      await this.setRoom(clientId, roomId);
      socket.data.roomId = roomId;
    }
    await socket.join(socketRoom(roomId));

    if (position.lastSeq !== undefined) {
      const replay = await this.catchup.replay(socket, roomId, position.lastSeq, position.incarnation);
      if (replay) {
        metrics.reconnections.inc({ outcome: 'recovered' });
        return { result: { roomId, recovered: true, replayed: replay.replayed, more: replay.more, seq: replay.seq, incarnation: replay.incarnation } };
      }
    }
    const snapshot = await this.rooms.snapshot(roomId);
    if (opts.emitSnapshot) socket.emit('room:state_snapshot', { ...snapshot, recovered: false });
    metrics.reconnections.inc({ outcome: 'snapshot' });
    return { result: { roomId, recovered: false, replayed: 0, more: false, seq: snapshot.seq, incarnation: snapshot.incarnation }, snapshot };
  }

  // Eviction job ids carry the epoch they were scheduled under; the last few cover a client that
  // flapped several times within one grace period.
  private previousEvictions(clientId: string, epoch: number): string[] {
    const ids: string[] = [];
    for (let e = Math.max(1, epoch - 3); e < epoch; e++) ids.push(jobId('evict', clientId, e));
    return ids;
  }
}

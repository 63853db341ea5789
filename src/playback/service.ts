import { z } from 'zod';
import type { Config } from '../config/index.js';
import type { JobKind, Jobs } from '../jobs/queues.js';
import { jobId } from '../jobs/queues.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { socketRoom, type PlaybackControlChanged, type PlaybackEvent, type PlaybackSync } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import type { Keys } from '../redis/keys.js';
import { flatToObject, type Scripts } from '../redis/scripts.js';
import { broadcast } from '../rooms/broadcast.js';
import { playbackAt } from '../rooms/model.js';
import type { TetherNamespace } from '../transport/types.js';
import { MAX_SYNC_BUFFER_MS, MIN_SYNC_BUFFER_MS, nextSyncTick, type PlaybackAction } from './rules.js';

export const PLAYBACK_SYNC_QUEUE = 'playback-sync';

export const PlaybackSyncJob = z.object({
  v: z.literal(1),
  roomId: z.string(),
  generation: z.number().int().min(1),
  tick: z.number().int().min(1),
});
export type PlaybackSyncJob = z.output<typeof PlaybackSyncJob>;

export interface CommandInput {
  trackId?: string;
  positionMs?: number;
}

/**
 * Synchronized playback. Every command is one atomic Lua step (permission, buffer from the room's
 * RTTs, state, seq + log) and then one sequenced broadcast. "Server time" is the workers' wall
 * clock (Date.now()), the same clock sync:ping answers with and room snapshots are stamped with;
 * workers on several hosts must run NTP, which keeps them within a few ms — well inside the
 * 100 ms minimum buffer.
 *
 * Drift correction is a chain of BullMQ delayed jobs per playing room and playback generation:
 * each tick claims itself in Redis (so a re-run cannot broadcast twice), schedules the next tick
 * under a deterministic id (so a re-run cannot fork the chain) and broadcasts one playback:sync.
 * Any command bumps the generation, which turns the old chain stale.
 */
export class PlaybackService {
  constructor(
    private readonly config: Config,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
    private readonly jobs: Jobs,
    private readonly nsp: TetherNamespace,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores a member's latest RTT (already clamped). Program rooms: the caller checked the JWT claim. */
  async reportRtt(roomId: string, clientId: string, rttMs: number, requireMember: boolean): Promise<void> {
    const k = this.keys.room(roomId);
    await this.scripts.call('playbackReport', [k.meta, k.members, k.rtt], [clientId, rttMs, requireMember ? 1 : 0, this.config.rooms.ttlMs]);
  }

  async command(roomId: string, clientId: string, action: PlaybackAction, input: CommandInput = {}): Promise<PlaybackEvent> {
    const k = this.keys.room(roomId);
    const now = this.now();
    const reply = await this.scripts.call('playbackCommand', [k.meta, k.members, k.playback, k.rtt, k.log], [
      clientId,
      action,
      input.trackId ?? '',
      input.positionMs === undefined ? '' : Math.round(input.positionMs),
      now,
      this.config.playback.defaultRttMs,
      MIN_SYNC_BUFFER_MS,
      MAX_SYNC_BUFFER_MS,
      this.config.events.catchupMaxEvents,
      this.config.events.catchupTtlMs,
      this.config.rooms.ttlMs,
    ]);
    if (reply![0] === 0) throw new TetherError('INVALID_PAYLOAD', `nothing is loaded to ${action}; send playback:start first`);
    const seq = Number(reply![1]);
    const event: PlaybackEvent = { ...(JSON.parse(String(reply![2])) as Omit<PlaybackEvent, 'seq'>), seq };
    const generation = Number(reply![3]);
    metrics.playbackCommands.inc({ action });
    metrics.eventsPublished.inc({ source: 'client' });
    broadcast(this.nsp, `playback:${action}`, event);
    if (reply![4] === 1) await this.startSyncChain(roomId, generation, Number(reply![5]), now);
    return event;
  }

  async grant(roomId: string, hostClientId: string, targetClientId: string, allowed: boolean): Promise<PlaybackControlChanged> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('playbackGrant', [k.meta, k.members, k.log], [
      hostClientId,
      targetClientId,
      allowed ? 1 : 0,
      this.config.events.catchupMaxEvents,
      this.config.events.catchupTtlMs,
      this.config.rooms.ttlMs,
    ]);
    if (reply![0] === 0) throw new TetherError('NOT_IN_ROOM', `${targetClientId} is not a member of this room`);
    if (reply![0] === 2) throw new TetherError('INVALID_PAYLOAD', 'the host always controls playback');
    const event: PlaybackControlChanged = { ...(JSON.parse(String(reply![2])) as Omit<PlaybackControlChanged, 'seq'>), seq: Number(reply![1]) };
    metrics.playbackCommands.inc({ action: 'grant' });
    metrics.eventsPublished.inc({ source: 'client' });
    broadcast(this.nsp, 'playback:control', event);
    return event;
  }

  /** First tick of a new generation, due one interval after the playback (re)starts. */
  private async startSyncChain(roomId: string, generation: number, startAt: number, now: number): Promise<void> {
    const { tick, delayMs } = nextSyncTick(startAt, this.config.playback.syncIntervalMs, 0, now);
    try {
      await this.schedule({ v: 1, roomId, generation, tick }, delayMs);
    } catch (err) {
      // The command stands (state and broadcast are done); only drift correction is missing until
      // the next command. Logged loudly because it means the queue Redis is unreachable.
      this.log.error({ roomId, generation, err: (err as Error).message }, 'could not schedule playback sync');
    }
  }

  /**
   * Every tick is scheduled twice: the primary at its due time and a backup a quarter interval
   * later, under ids derived from (room, generation, tick) so re-runs add nothing. The claim in
   * playbackSync.lua makes whichever runs second a no-op. Why two: BullMQ wakes exactly one idle
   * worker per delayed job (the one that pops the queue's marker); the others only look again
   * after their drainDelay (5 s). If that one worker dies — or dies while running the tick — a
   * lone job would leave the room without syncs for up to 5 s (30 s for an active job's lock).
   * The backup's own marker goes to another worker, so a death costs at most a quarter interval.
   */
  private async schedule(job: PlaybackSyncJob, delayMs: number): Promise<void> {
    const base = jobId('psync', job.roomId, job.generation, job.tick);
    await this.jobs.schedule(PLAYBACK_SYNC_QUEUE, base, job, delayMs);
    await this.jobs.schedule(PLAYBACK_SYNC_QUEUE, `${base}-b`, job, delayMs + Math.round(this.config.playback.syncIntervalMs / 4));
  }

  /**
   * One drift-sync tick. Order matters: claim (Redis, atomic) → schedule the next tick → broadcast.
   * Dying after the claim leaves the job active; BullMQ re-runs it once its lock expires, the
   * claim says "already done" and only the scheduling is repeated (a no-op if it had happened).
   * Dying after scheduling loses one sync, never the chain.
   */
  async syncTick(job: PlaybackSyncJob): Promise<'done' | 'stale'> {
    const k = this.keys.room(job.roomId);
    const reply = await this.scripts.call('playbackSync', [k.meta, k.playback, k.members], [job.generation, job.tick, this.config.rooms.ttlMs]);
    if (!reply) return 'stale';
    const now = this.now();
    const state = playbackAt(flatToObject(reply[1]), now);
    const anchor = state.startAtServerTime ?? now;
    const next = nextSyncTick(anchor, this.config.playback.syncIntervalMs, job.tick, now);
    await this.schedule({ ...job, tick: next.tick }, next.delayMs);
    if (reply[0] !== 1 || !state.trackId) return 'done';
    const sync: PlaybackSync = { roomId: job.roomId, trackId: state.trackId, positionMs: state.positionMs, serverTimestamp: now };
    this.nsp.to(socketRoom(job.roomId)).emit('playback:sync', sync);
    metrics.playbackSyncs.inc();
    this.log.debug({ roomId: job.roomId, generation: job.generation, tick: job.tick }, 'playback sync');
    return 'done';
  }

  /** The BullMQ job kind to register with jobs.work() in the composition root. */
  syncJobKind(): JobKind<typeof PlaybackSyncJob> {
    return { queue: PLAYBACK_SYNC_QUEUE, schema: PlaybackSyncJob, concurrency: 50, process: (job) => this.syncTick(job) };
  }
}

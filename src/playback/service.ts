import { z } from 'zod';
import type { Config } from '../config/index.js';
import type { JobKind, Jobs } from '../jobs/queues.js';
import { jobId } from '../jobs/queues.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { Fanout } from '../fanout/port.js';
import type { PlaybackControlChanged, PlaybackEvent, PlaybackSync } from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import { playbackAt } from '../rooms/model.js';
import { nextSyncTick, type PlaybackAction } from './rules.js';
import type { PlaybackStore } from './store.js';

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
    private readonly store: PlaybackStore,
    private readonly jobs: Jobs,
    private readonly fanout: Fanout,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores a member's latest RTT (already clamped). Program rooms: the caller checked the JWT claim. */
  async reportRtt(roomId: string, clientId: string, rttMs: number, requireMember: boolean): Promise<void> {
    await this.store.reportRtt(roomId, clientId, rttMs, requireMember);
  }

  async command(roomId: string, clientId: string, action: PlaybackAction, input: CommandInput = {}): Promise<PlaybackEvent> {
    const now = this.now();
    const broadcast = this.fanout.fromScript(roomId, `playback:${action}`);
    const result = await this.store.command(roomId, { clientId, action, trackId: input.trackId, positionMs: input.positionMs, now, broadcast });
    if (!result.applied) throw new TetherError('INVALID_PAYLOAD', `nothing is loaded to ${action}; send playback:start first`);
    metrics.playbackCommands.inc({ action });
    metrics.eventsPublished.inc({ source: 'client' });
    if (!broadcast) this.fanout.toRoom(roomId, `playback:${action}`, result.event);
    if (result.playing) await this.startSyncChain(roomId, result.generation, result.startAtServerTime, now);
    return result.event;
  }

  async grant(roomId: string, hostClientId: string, targetClientId: string, allowed: boolean): Promise<PlaybackControlChanged> {
    const broadcast = this.fanout.fromScript(roomId, 'playback:control');
    const result = await this.store.grant(roomId, { hostClientId, targetClientId, allowed, broadcast });
    if (result.status === 'not_a_member') throw new TetherError('NOT_IN_ROOM', `${targetClientId} is not a member of this room`);
    if (result.status === 'host_keeps_control') throw new TetherError('INVALID_PAYLOAD', 'the host always controls playback');
    metrics.playbackCommands.inc({ action: 'grant' });
    metrics.eventsPublished.inc({ source: 'client' });
    if (!broadcast) this.fanout.toRoom(roomId, 'playback:control', result.event);
    return result.event;
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
   * after their drainDelay (1 s, see jobs/queues.ts). If that one worker dies while running the
   * tick, a lone job waits for its lock to expire (30 s) before BullMQ re-runs it; the backup's
   * own marker goes to another worker, so a death costs at most a quarter interval.
   */
  private async schedule(job: PlaybackSyncJob, delayMs: number): Promise<void> {
    const base = jobId('psync', job.roomId, job.generation, job.tick);
    const room = { room: job.roomId };
    await this.jobs.schedule(PLAYBACK_SYNC_QUEUE, base, job, delayMs, room);
    await this.jobs.schedule(PLAYBACK_SYNC_QUEUE, `${base}-b`, job, delayMs + Math.round(this.config.playback.syncIntervalMs / 4), room);
  }

  /**
   * One drift-sync tick. Order matters: claim (Redis, atomic) → schedule the next tick → broadcast.
   * Dying after the claim leaves the job active; BullMQ re-runs it once its lock expires, the
   * claim says "already done" and only the scheduling is repeated (a no-op if it had happened).
   * Dying after scheduling loses one sync, never the chain.
   */
  async syncTick(job: PlaybackSyncJob): Promise<'done' | 'stale'> {
    const claim = await this.store.claimSync(job.roomId, job.generation, job.tick);
    if (claim.status === 'stale') return 'stale';
    const now = this.now();
    const state = playbackAt(claim.playback, now);
    const anchor = state.startAtServerTime ?? now;
    const next = nextSyncTick(anchor, this.config.playback.syncIntervalMs, job.tick, now);
    await this.schedule({ ...job, tick: next.tick }, next.delayMs);
    if (claim.status !== 'claimed' || !state.trackId) return 'done';
    const sync: PlaybackSync = { roomId: job.roomId, trackId: state.trackId, positionMs: state.positionMs, serverTimestamp: now };
    this.fanout.toRoom(job.roomId, 'playback:sync', sync);
    metrics.playbackSyncs.inc();
    this.log.debug({ roomId: job.roomId, generation: job.generation, tick: job.tick }, 'playback sync');
    return 'done';
  }

  /** The BullMQ job kind to register with jobs.work() in the composition root. */
  syncJobKind(): JobKind<typeof PlaybackSyncJob> {
    return { queue: PLAYBACK_SYNC_QUEUE, schema: PlaybackSyncJob, concurrency: 50, perRoom: true, process: (job) => this.syncTick(job) };
  }
}

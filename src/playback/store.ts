import type { Config } from '../config/index.js';
import type { PlaybackControlChanged, PlaybackEvent } from '@tether/protocol';
import type { Keys } from '../redis/keys.js';
import { broadcastArgs, flatToObject, type Scripts } from '../redis/scripts.js';
import type { ScriptBroadcast } from '../fanout/port.js';
import { MAX_SYNC_BUFFER_MS, MIN_SYNC_BUFFER_MS, type PlaybackAction } from './rules.js';

export type CommandResult = { applied: false } | { applied: true; event: PlaybackEvent; generation: number; playing: boolean; startAtServerTime: number };
export type GrantResult = { status: 'granted'; event: PlaybackControlChanged } | { status: 'not_a_member' } | { status: 'host_keeps_control' };
export type SyncClaim = { status: 'stale' } | { status: 'claimed' | 'already_claimed'; playback: Record<string, string> };

/** Playback state, RTTs and drift-sync claims over their scripts: named arguments in, typed results out. */
export class PlaybackStore {
  constructor(
    private readonly config: Config,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
  ) {}

  async reportRtt(roomId: string, clientId: string, rttMs: number, requireMember: boolean): Promise<void> {
    await this.scripts.call('playbackReport', this.keys.roomState(roomId), [clientId, rttMs, requireMember ? 1 : 0, this.config.rooms.ttlMs]);
  }

  /** Permission, buffer from the room's RTTs, state and seq'd log entry in one step. Throws UNAUTHORIZED / NOT_IN_ROOM / ROOM_NOT_FOUND. */
  async command(roomId: string, a: { clientId: string; action: PlaybackAction; trackId?: string | undefined; positionMs?: number | undefined; now: number; broadcast: ScriptBroadcast | null }): Promise<CommandResult> {
    const e = this.config.events;
    const reply = (await this.scripts.call('playbackCommand', [...this.keys.roomState(roomId), this.keys.room(roomId).log], [
      a.clientId, a.action, a.trackId ?? '', a.positionMs === undefined ? '' : Math.round(a.positionMs), a.now,
      this.config.playback.defaultRttMs, MIN_SYNC_BUFFER_MS, MAX_SYNC_BUFFER_MS, e.catchupMaxEvents, e.catchupTtlMs, this.config.rooms.ttlMs,
      ...broadcastArgs(a.broadcast),
    ]))!;
    if (reply[0] === 0) return { applied: false };
    return {
      applied: true,
      event: { ...(JSON.parse(String(reply[2])) as Omit<PlaybackEvent, 'seq'>), seq: Number(reply[1]) },
      generation: Number(reply[3]),
      playing: reply[4] === 1,
      startAtServerTime: Number(reply[5]),
    };
  }

  async grant(roomId: string, a: { hostClientId: string; targetClientId: string; allowed: boolean; broadcast: ScriptBroadcast | null }): Promise<GrantResult> {
    const e = this.config.events;
    const reply = (await this.scripts.call('playbackGrant', [...this.keys.roomState(roomId), this.keys.room(roomId).log], [
      a.hostClientId, a.targetClientId, a.allowed ? 1 : 0, e.catchupMaxEvents, e.catchupTtlMs, this.config.rooms.ttlMs, ...broadcastArgs(a.broadcast),
    ]))!;
    if (reply[0] === 0) return { status: 'not_a_member' };
    if (reply[0] === 2) return { status: 'host_keeps_control' };
    return { status: 'granted', event: { ...(JSON.parse(String(reply[2])) as Omit<PlaybackControlChanged, 'seq'>), seq: Number(reply[1]) } };
  }

  /** Claims drift-sync tick `tick` of playback generation `generation` (at most once per tick). */
  async claimSync(roomId: string, generation: number, tick: number): Promise<SyncClaim> {
    const reply = await this.scripts.call('playbackSync', this.keys.roomState(roomId), [generation, tick, this.config.rooms.ttlMs]);
    if (!reply) return { status: 'stale' };
    return { status: reply[0] === 1 ? 'claimed' : 'already_claimed', playback: flatToObject(reply[1]) };
  }
}

/**
 * The pure parts of synchronized playback that run in Node. Who may control playback and the sync
 * buffer (clamp(2 × max member RTT, MIN, MAX)) are decided in one place only, playbackCommand.lua
 * and playbackGrant.lua, next to the data they read (test/integration/stores.test.ts runs them).
 */

/** The start/pause/seek/stop lead time never drops below this: one scheduler tick plus jitter. */
export const MIN_SYNC_BUFFER_MS = 100;
/** …nor grows above this: a slower member joins late rather than making everyone wait. */
export const MAX_SYNC_BUFFER_MS = 500;
/**
 * Reported RTTs are clamped to this. The schema admits up to 60 s so that a client on a terrible
 * link is not refused, but anything beyond the buffer cap only says "slow", and a bounded
 * integer keeps the stored hash tidy.
 */
export const MAX_REPORTED_RTT_MS = 10_000;

export type PlaybackAction = 'start' | 'pause' | 'seek' | 'stop';

/** Rounds and clamps a client's RTT report into [0, MAX_REPORTED_RTT_MS]. */
export function clampRtt(rttMs: number): number {
  if (!Number.isFinite(rttMs)) return MAX_REPORTED_RTT_MS;
  return Math.min(MAX_REPORTED_RTT_MS, Math.max(0, Math.round(rttMs)));
}

/**
 * The drift-sync schedule of one playback generation: tick k is due at
 * `anchor + k × interval` (anchor = startAtServerTime, k ≥ 1), so the cadence does not drift by
 * each job's processing latency. After tick `done` ran at `now`, the next tick is the first one
 * due at least half an interval from now: a chain that was held up (a dead worker's stalled job
 * recovered late) resumes the cadence instead of firing a burst of catch-up syncs.
 */
export function nextSyncTick(anchor: number, intervalMs: number, done: number, now: number): { tick: number; delayMs: number } {
  const earliest = Math.ceil((now + intervalMs / 2 - anchor) / intervalMs);
  const tick = Math.max(done + 1, earliest);
  return { tick, delayMs: Math.max(0, anchor + tick * intervalMs - now) };
}

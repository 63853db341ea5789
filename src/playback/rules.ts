/**
 * The pure rules of synchronized playback. The Lua scripts (src/redis/scripts/playback*.lua)
 * enforce the same rules atomically next to the data; these functions are what the docs, the
 * unit tests and the TypeScript callers use. Change one, change the other.
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
 * syncBufferMs = clamp(2 × max RTT in the room, 100, 500). `reportedRtts` are the RTTs reported
 * by current members only; when nobody has reported yet, `defaultRttMs` stands in.
 * Two RTTs, not one: the command reaches the server (≈ RTT/2 already spent) and the broadcast
 * must reach the slowest member (≈ RTT/2) with room to spare for jitter.
 */
export function syncBufferMs(reportedRtts: readonly number[], defaultRttMs: number): number {
  const maxRtt = reportedRtts.length > 0 ? Math.max(...reportedRtts.map(clampRtt)) : defaultRttMs;
  return Math.min(MAX_SYNC_BUFFER_MS, Math.max(MIN_SYNC_BUFFER_MS, 2 * maxRtt));
}

export interface ControlSubject {
  /** 'program' rooms are named by JWT claims and have no host. */
  roomKind: 'room' | 'program';
  /** The caller's participant record in the room's members hash, or null when it is not a member. */
  participant: { role: 'host' | 'member'; canControl: boolean } | null;
}

export type ControlDecision = 'allow' | 'NOT_IN_ROOM' | 'UNAUTHORIZED';

/**
 * Who may start/pause/seek/stop: in a code-joined room, the host and the members the host granted
 * control. In a program room nobody may over the socket: a program room has no host to grant
 * control, and its subscribers are not members (they are listed by their JWT), so any of
 * thousands of viewers could otherwise seize the stream. Program rooms still get playback state
 * in their snapshots and syncs; driving them from a backend is future work (see docs/PLAYBACK.md).
 */
export function canControlPlayback(s: ControlSubject): ControlDecision {
  if (s.roomKind === 'program') return 'UNAUTHORIZED';
  if (!s.participant) return 'NOT_IN_ROOM';
  return s.participant.role === 'host' || s.participant.canControl ? 'allow' : 'UNAUTHORIZED';
}

/** Only the host grants or revokes control, only in code rooms, never its own. */
export function canGrantControl(s: ControlSubject & { targetIsHost: boolean; allowed: boolean }): ControlDecision | 'HOST_ALWAYS_CONTROLS' {
  if (s.roomKind === 'program') return 'UNAUTHORIZED';
  if (!s.participant) return 'NOT_IN_ROOM';
  if (s.participant.role !== 'host') return 'UNAUTHORIZED';
  if (s.targetIsHost && !s.allowed) return 'HOST_ALWAYS_CONTROLS';
  return 'allow';
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

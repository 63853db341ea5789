import type { PlaybackEvent, PlaybackState, PlaybackSync, SyncPong } from '@tether/protocol';

/**
 * Client-side playback helpers: pure (no timers, no sockets, clocks passed in), so the SDK and
 * apps can drive them from any loop and tests can feed exact timestamps.
 *
 * Clock sync is NTP's: the client stamps t0 when sending sync:ping, the server t1 on receipt and
 * t2 when answering, the client t3 on the pong. With d↑ and d↓ the two one-way delays and θ the
 * server clock minus the client clock:
 *   t1 = t0 + d↑ + θ,  t3 = t2 + d↓ − θ
 *   offset = ((t1 − t0) + (t2 − t3)) / 2 = θ + (d↑ − d↓) / 2
 *   rtt    = (t3 − t0) − (t2 − t1)       = d↑ + d↓
 * The error of one sample is half its delay asymmetry, bounded by rtt/2, so the samples with the
 * lowest RTT are the most trustworthy: keep the best of the last N and take their median offset
 * (the median also shrugs off one sample hit by a GC pause).
 */

export interface ClockSample {
  offsetMs: number;
  rttMs: number;
}

/** One NTP sample from the four timestamps; null when they are inconsistent (a clock jumped). */
export function clockSample(t0: number, t1: number, t2: number, t3: number): ClockSample | null {
  const rttMs = t3 - t0 - (t2 - t1);
  if (![t0, t1, t2, t3].every(Number.isFinite) || rttMs < 0 || t2 < t1) return null;
  return { offsetMs: (t1 - t0 + (t2 - t3)) / 2, rttMs };
}

export interface ClockSyncOptions {
  /** Samples remembered (the most recent ones). */
  window?: number;
  /** Of those, how many lowest-RTT samples feed the estimate. */
  best?: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export class ClockSync {
  private readonly window: number;
  private readonly best: number;
  private samples: ClockSample[] = [];

  constructor(opts: ClockSyncOptions = {}) {
    this.window = Math.max(1, opts.window ?? 10);
    this.best = Math.min(this.window, Math.max(1, opts.best ?? 4));
  }

  /** Adds a sample from t0 (client send), t1/t2 (server receive/send) and t3 (client receive). */
  add(t0: number, t1: number, t2: number, t3: number): ClockSample | null {
    const s = clockSample(t0, t1, t2, t3);
    if (!s) return null;
    this.samples.push(s);
    if (this.samples.length > this.window) this.samples.shift();
    return s;
  }

  /** Adds the sample of a sync:pong (or the sync:ping ack data) received at local time t3. */
  addPong(pong: SyncPong, t3: number): ClockSample | null {
    return this.add(pong.clientTimestamp, pong.serverReceiveTimestamp, pong.serverTimestamp, t3);
  }

  get sampleCount(): number {
    return this.samples.length;
  }

  private kept(): ClockSample[] {
    return [...this.samples].sort((a, b) => a.rttMs - b.rttMs).slice(0, this.best);
  }

  /** Server clock minus local clock (ms); 0 before the first sample. */
  get offsetMs(): number {
    return this.samples.length ? median(this.kept().map((s) => s.offsetMs)) : 0;
  }

  /** The RTT to report with sync:report: median of the kept samples; null before the first sample. */
  get rttMs(): number | null {
    return this.samples.length ? median(this.kept().map((s) => s.rttMs)) : null;
  }

  /** The server's clock now, given the local clock now (e.g. performance.timeOrigin + performance.now()). */
  serverNow(localNow: number): number {
    return localNow + this.offsetMs;
  }

  /** The local time at which the server's clock reads `serverTime` (to schedule a start). */
  localTimeOf(serverTime: number): number {
    return serverTime - this.offsetMs;
  }

  /** The sync:report payload for a room. */
  report(roomId?: string): { roomId?: string; rttMs: number; offsetMs: number } | null {
    const rttMs = this.rttMs;
    if (rttMs === null) return null;
    return { ...(roomId ? { roomId } : {}), rttMs, offsetMs: this.offsetMs };
  }

  reset(): void {
    this.samples = [];
  }
}

/**
 * The track position at server time `serverTime`. Works for every shape the server sends:
 * a PlaybackEvent (positionMs is where the track is at startAtServerTime), a room snapshot's
 * playback (positionMs is where it is at serverTimestamp, or at startAtServerTime if that is still
 * ahead) and a PlaybackSync (positionMs at serverTimestamp). While playing the position advances
 * 1 ms per server ms from whichever of those instants is later; before it, the track holds.
 */
export function positionAt(
  state: Pick<PlaybackState, 'playing' | 'positionMs' | 'serverTimestamp'> & { startAtServerTime?: number | null },
  serverTime: number,
): number {
  if (!state.playing) return state.positionMs;
  const reference = Math.max(state.serverTimestamp, state.startAtServerTime ?? state.serverTimestamp);
  return state.positionMs + Math.max(0, serverTime - reference);
}

/** Milliseconds of server time until a command takes effect (≤ 0: it already has). */
export function msUntilEffective(event: Pick<PlaybackEvent, 'startAtServerTime'>, serverTime: number): number {
  return event.startAtServerTime === null ? 0 : event.startAtServerTime - serverTime;
}

/**
 * playback:sync is not sequenced: one issued just before a pause or seek can arrive after it.
 * Apply it only to the state it was computed for: same track, still playing, and stamped after
 * the command that produced the current state took effect.
 */
export function shouldApplySync(current: Pick<PlaybackState, 'playing' | 'trackId' | 'startAtServerTime'>, sync: PlaybackSync): boolean {
  return current.playing && current.trackId === sync.trackId && sync.serverTimestamp >= (current.startAtServerTime ?? -Infinity);
}

/**
 * How far the local player is off (positive: ahead of the room). Apps typically ignore |drift|
 * under ~40 ms, nudge the playback rate below ~1 s, and seek beyond.
 */
export function driftMs(localPositionMs: number, sync: PlaybackSync, serverTime: number): number {
  return localPositionMs - positionAt({ playing: true, positionMs: sync.positionMs, serverTimestamp: sync.serverTimestamp }, serverTime);
}

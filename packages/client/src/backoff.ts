/**
 * Reconnect and retry delays. Exponential backoff with *full jitter* (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"): the delay is uniform in [0, min(max, base·2^(attempt-1))).
 * Full jitter spreads a reconnection storm — thousands of clients losing the same worker at the
 * same instant — over the whole window instead of re-synchronising them at each step.
 */

export interface BackoffOptions {
  /** Ceiling of the first attempt's delay. */
  baseMs: number;
  /** Largest ceiling, whatever the attempt. */
  maxMs: number;
}

export type RandomFn = () => number;

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/** Upper bound (exclusive) of the delay before attempt `attempt` (1-based). */
export function backoffCeiling(attempt: number, opts: BackoffOptions): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2 ** 1024 is Infinity; min() keeps it finite long before that.
  return Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(n - 1, 52));
}

/** Full-jitter delay before attempt `attempt` (1-based): an integer in [0, ceiling). */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: RandomFn = Math.random): number {
  const ceiling = backoffCeiling(attempt, opts);
  return Math.max(0, Math.min(ceiling - 1, Math.floor(clampUnit(random()) * ceiling)));
}

/**
 * Delay after a `server:shutdown` notice: at least what the server asked for (it already spreads
 * its clients), plus a little local jitter so clients of one batch do not land on the same tick.
 */
export function shutdownDelay(reconnectAfterMs: number, jitterMs: number, random: RandomFn = Math.random): number {
  const base = Number.isFinite(reconnectAfterMs) && reconnectAfterMs > 0 ? Math.floor(reconnectAfterMs) : 0;
  return base + Math.floor(clampUnit(random()) * Math.max(0, jitterMs));
}

function clampUnit(x: number): number {
  if (!(x >= 0)) return 0;
  return x >= 1 ? 1 - Number.EPSILON : x;
}

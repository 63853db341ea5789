/**
 * A token bucket per socket. Limits are per connection on purpose: the worker holding the socket
 * enforces them without a Redis round trip on every publish. A reconnect starts a full bucket, so
 * a client that reconnects to escape the limit gains one burst per handshake (and pays a session
 * round trip for it). The clock is injected so tests need no timers.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token if available. */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.ratePerSec);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

import { TetherError } from '@tether/protocol';
import { metrics } from '../observability/metrics.js';

/**
 * A token bucket. The clock is injected so tests need no timers.
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

/**
 * A rate limit per connection: the worker holding the socket enforces it without a Redis round
 * trip on every request. A reconnect starts a full bucket, so a client that reconnects to escape
 * the limit gains one burst per handshake (and pays a session round trip for it). Buckets are
 * created on first use and die with their socket (WeakMap).
 */
export class RateLimit {
  private readonly buckets = new WeakMap<object, TokenBucket>();

  constructor(
    private readonly kind: 'publish' | 'signal' | 'message' | 'sync',
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly what: string,
  ) {}

  /** Throws RATE_LIMITED when `socket` is over its budget. */
  check(socket: object, now = Date.now()): void {
    let bucket = this.buckets.get(socket);
    if (!bucket) this.buckets.set(socket, (bucket = new TokenBucket(this.ratePerSec, this.burst, now)));
    if (bucket.take(now)) return;
    metrics.rateLimited.inc({ kind: this.kind });
    throw new TetherError('RATE_LIMITED', `at most ${this.ratePerSec} ${this.what} per second`);
  }
}

import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { TetherError } from '@tether/protocol';
import type { NodeRedis } from '../redis/client.js';

/**
 * Limits that hold across the whole cluster because they live in Redis (rate-limiter-flexible's
 * fixed windows, one key per subject): a client that opens another socket, or spreads over every
 * worker, does not get a fresh budget. The per-connection token buckets (events/rate-limit.ts)
 * stay in front as the cheap first line; the per-user and per-room publish budgets are checked
 * inside publish.lua itself, so the hottest path pays no extra round trip for them.
 *
 * A limit whose Redis call fails lets the request through: when Redis is down every request
 * fails anyway, and a limiter must not be the thing that turns a blip into an outage.
 */
export type LimitKind = 'handshake' | 'password' | 'room_create' | 'catchup' | 'signal' | 'http';

interface Window {
  points: number;
  durationSec: number;
  /** Lockout after the budget is spent (seconds); 0 = just wait for the window to end. */
  blockSec?: number;
}

export class Limits {
  private readonly handshake: RateLimiterRedis | null;
  private readonly pwClient: RateLimiterRedis;
  private readonly pwAddress: RateLimiterRedis;
  private readonly pwRoom: RateLimiterRedis;
  private readonly roomCreate: RateLimiterRedis;
  private readonly catchupLimit: RateLimiterRedis;
  private readonly signalUser: RateLimiterRedis;
  private readonly signalRoom: RateLimiterRedis;
  private readonly httpLimit: RateLimiterRedis;

  constructor(
    private readonly config: Config,
    /** node-redis of any topology: rate-limiter-flexible's scripts and MULTIs take one key each. */
    redis: NodeRedis,
    private readonly log: Logger,
  ) {
    const l = config.limits;
    const make = (name: string, w: Window): RateLimiterRedis =>
      new RateLimiterRedis({
        storeClient: redis,
        useRedisPackage: true,
        keyPrefix: `${config.redis.keyPrefix}:rl:${name}`,
        points: w.points,
        duration: w.durationSec,
        blockDuration: w.blockSec ?? 0,
      });
    this.handshake = l.handshakesPerAddressPerMin > 0 ? make('hs', { points: l.handshakesPerAddressPerMin, durationSec: 60 }) : null;
    const pwWindow = Math.ceil(l.passwordWindowMs / 1000);
    const lockout = Math.ceil(l.passwordLockoutMs / 1000);
    this.pwClient = make('pw:c', { points: l.passwordAttemptsPerClient, durationSec: pwWindow, blockSec: lockout });
    this.pwAddress = make('pw:a', { points: l.passwordAttemptsPerAddress, durationSec: pwWindow, blockSec: lockout });
    this.pwRoom = make('pw:r', { points: l.passwordAttemptsPerRoom, durationSec: pwWindow, blockSec: lockout });
    this.roomCreate = make('rc', { points: l.roomCreatesPerUserPerMin, durationSec: 60 });
    this.catchupLimit = make('cu', { points: l.catchupsPerClientPerMin, durationSec: 60 });
    this.signalUser = make('sg:u', { points: config.events.signalRatePerSec, durationSec: 1 });
    this.signalRoom = make('sg:r', { points: l.roomSignalsPerSec, durationSec: 1 });
    this.httpLimit = make('http', { points: l.httpRequestsPerMin, durationSec: 60 });
  }

  /** A handshake that creates a new session (no session token presented), per client address. */
  async newSession(address: string): Promise<void> {
    if (this.handshake) await this.take('handshake', [[this.handshake, address]], 'too many new connections from this address');
  }

  /**
   * A password attempt: budgets per (room, client), per (room, address) — both with a lockout — and
   * per room, all taken before the slow hash runs, so a brute force costs neither guesses nor CPU.
   * Call `succeeded()` on the returned handle when the password matched: honest users never
   * accumulate attempts.
   */
  async passwordAttempt(roomId: string, clientId: string, address: string): Promise<{ succeeded(): Promise<void> }> {
    const keys: [RateLimiterRedis, string][] = [
      [this.pwClient, `${roomId}:${clientId}`],
      [this.pwAddress, `${roomId}:${address}`],
      [this.pwRoom, roomId],
    ];
    await this.take('password', keys, 'too many password attempts; wait before trying again');
    return {
      succeeded: async () => {
        await Promise.all(keys.map(([limiter, key]) => limiter.reward(key, 1).catch(() => undefined)));
      },
    };
  }

  async createRoom(userId: string): Promise<void> {
    await this.take('room_create', [[this.roomCreate, userId]], `at most ${this.config.limits.roomCreatesPerUserPerMin} rooms per minute`);
  }

  /** room:catchup requests and HTTP history reads, per client (or caller) and room. */
  async catchup(roomId: string, who: string): Promise<void> {
    await this.take('catchup', [[this.catchupLimit, `${roomId}:${who}`]], 'too many catch-up requests');
  }

  /** Signals per user (all their sockets and workers) in a room, and per room. */
  async signal(roomId: string, user: string): Promise<void> {
    await this.take('signal', [[this.signalUser, `${roomId}:${user}`], [this.signalRoom, roomId]], 'too many signals');
  }

  /** The HTTP API per caller (service, JWT subject or address). */
  async http(caller: string): Promise<void> {
    await this.take('http', [[this.httpLimit, caller]], 'too many HTTP requests');
  }

  private async take(kind: LimitKind, keys: [RateLimiterRedis, string][], message: string): Promise<void> {
    const results = await Promise.allSettled(keys.map(([limiter, key]) => limiter.consume(key, 1)));
    let retryAfterMs = 0;
    for (const r of results) {
      if (r.status === 'fulfilled') continue;
      if (r.reason instanceof RateLimiterRes) retryAfterMs = Math.max(retryAfterMs, r.reason.msBeforeNext);
      else this.log.warn({ kind, err: (r.reason as Error)?.message }, 'rate limit unavailable: request let through');
    }
    if (retryAfterMs === 0) return;
    metrics.rateLimited.inc({ kind });
    throw new TetherError('RATE_LIMITED', message, undefined, retryAfterMs);
  }
}

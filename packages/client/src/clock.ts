import { ClientError, toClientError } from './errors.js';
import { ClockSync } from './playback.js';
import type { Room } from './room.js';
import type { ClockEstimate, RequestName, RequestPayload, RequestResult } from './types.js';

type Timer = ReturnType<typeof setTimeout>;

export interface ClockSettings {
  samples: number;
  intervalMs: number;
  window: number;
  best: number;
}

export interface ClockDeps {
  /** null: clock sync off (serverNow() is the local clock, no pings, no reports). */
  settings: ClockSettings | null;
  now(): number;
  request<E extends RequestName>(event: E, payload: RequestPayload<E>): Promise<RequestResult<E>>;
  /** The connection epoch (bumped on every handshake and disconnect). */
  epoch(): number;
  connected(): boolean;
  closed(): boolean;
  rooms(): Room[];
  onEstimate(estimate: ClockEstimate): void;
  onError(err: ClientError): void;
}

/**
 * The client's clock sync: a burst of sync:pings after a room goes live on a connection, then one
 * ping and a sync:report round every interval while a room is held (docs/PLAYBACK.md).
 */
export class ClockScheduler {
  private clock: ClockSync;
  /** Connection epoch whose initial ping burst completed (rooms going live after it only report). */
  private syncedEpoch = -1;
  /** The burst of the current connection, while it runs. */
  private burst: { epoch: number; done: Promise<void> } | null = null;
  private timer: Timer | undefined;
  /** A back-off pause inside a burst (RATE_LIMITED): cleared and resolved by stop(). */
  private pause: { timer: Timer; resolve(): void } | undefined;

  constructor(private readonly deps: ClockDeps) {
    this.clock = this.newClock();
  }

  serverNow(): number {
    return this.clock.serverNow(this.deps.now());
  }

  localTimeOf(serverTime: number): number {
    return this.clock.localTimeOf(serverTime);
  }

  get offsetMs(): number {
    return this.clock.offsetMs;
  }

  get rttMs(): number | null {
    return this.clock.rttMs;
  }

  get synced(): boolean {
    return this.clock.sampleCount > 0;
  }

  estimate(): ClockEstimate | null {
    const rttMs = this.clock.rttMs;
    return rttMs === null ? null : { offsetMs: this.clock.offsetMs, rttMs, samples: this.clock.sampleCount };
  }

  /**
   * A room reached its baseline on this connection. The first one starts the connection's ping
   * burst, which reports to every live room when done; a room going live after that reports the
   * current estimate at once.
   */
  onRoomLive(room: Room): void {
    if (!this.deps.settings || !this.deps.connected()) return;
    const epoch = this.deps.epoch();
    if (this.syncedEpoch !== epoch) {
      void this.startBurst(false);
      return;
    }
    void this.report([room]);
    // The re-sync stops when the last room closes; a room joined later restarts it.
    this.schedule(epoch);
  }

  /**
   * The initial burst of a connection: `samples` sequential pings into a fresh ClockSync (the new
   * path's RTT is what counts; the previous connection's estimate stays in use until it is done),
   * then reports, then the periodic re-sync. `force` runs a new burst even if this connection had one.
   */
  startBurst(force: boolean): Promise<void> {
    const epoch = this.deps.epoch();
    if (this.burst?.epoch === epoch) return this.burst.done;
    if (!force && this.syncedEpoch === epoch) return Promise.resolve();
    const cfg = this.deps.settings ?? { samples: 6, intervalMs: 10_000, window: 10, best: 4 };
    const burst = {
      epoch,
      done: (async () => {
        const fresh = this.newClock();
        for (let i = 0; i < cfg.samples && epoch === this.deps.epoch(); i++) {
          if (!(await this.ping(fresh, epoch))) break;
        }
        if (epoch !== this.deps.epoch() || this.deps.closed()) return;
        if (fresh.sampleCount > 0) this.clock = fresh;
        this.syncedEpoch = epoch;
        await this.round(epoch);
      })().finally(() => {
        if (this.burst === burst) this.burst = null;
      }),
    };
    this.burst = burst;
    return burst.done;
  }

  /** The connection dropped, the last room closed, or the client closed: no timer survives. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const pause = this.pause;
    this.pause = undefined;
    if (pause) {
      clearTimeout(pause.timer);
      pause.resolve();
    }
  }

  private newClock(): ClockSync {
    const c = this.deps.settings;
    return new ClockSync(c ? { window: c.window, best: c.best } : {});
  }

  /**
   * One sync:ping into `clock`; false when the burst should end (connection gone, timeout).
   * RATE_LIMITED (another burst, many room reports) waits a little and counts as done.
   */
  private async ping(clock: ClockSync, epoch: number): Promise<boolean> {
    const t0 = this.deps.now();
    try {
      const pong = await this.deps.request('sync:ping', { clientTimestamp: t0 });
      if (epoch !== this.deps.epoch()) return false;
      clock.addPong(pong, this.deps.now());
      return true;
    } catch (err) {
      const e = toClientError(err);
      if (epoch !== this.deps.epoch() || this.deps.closed()) return false;
      if (e.code === 'RATE_LIMITED') {
        await new Promise<void>((resolve) => {
          this.pause = {
            resolve,
            timer: setTimeout(() => {
              this.pause = undefined;
              resolve();
            }, 200),
          };
        });
        return epoch === this.deps.epoch() && !this.deps.closed();
      }
      if (e.code !== 'OFFLINE' && e.code !== 'DISCONNECTED') this.deps.onError(e);
      return false;
    }
  }

  /** Announces the estimate, reports it to every live room, and schedules the next re-sync. */
  private async round(epoch: number): Promise<void> {
    const estimate = this.estimate();
    if (estimate) this.deps.onEstimate(estimate);
    await this.report(this.deps.rooms().filter((r) => r.status === 'live'));
    if (epoch === this.deps.epoch() && !this.deps.closed()) this.schedule(epoch);
  }

  /** sync:report to each room (sequential: ping and report share a 10/s server rate limit). */
  private async report(rooms: Room[]): Promise<void> {
    const payload = this.clock.report();
    if (!payload) return;
    for (const room of rooms) {
      if (room.status !== 'live') continue;
      try {
        await room.request('sync:report', payload);
      } catch (err) {
        const code = toClientError(err).code;
        // Gone or racing a leave/disconnect, or throttled: the next round reports again.
        if (!['OFFLINE', 'DISCONNECTED', 'TIMEOUT', 'NOT_IN_ROOM', 'ROOM_NOT_FOUND', 'RATE_LIMITED', 'CLOSED'].includes(code)) {
          this.deps.onError(toClientError(err));
        }
      }
    }
  }

  /** Every `intervalMs` while connected with a room: one more ping, then a round. */
  private schedule(epoch: number): void {
    const cfg = this.deps.settings;
    if (!cfg || this.timer || this.deps.rooms().length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (epoch !== this.deps.epoch() || this.deps.closed() || this.deps.rooms().length === 0) return;
      void (async () => {
        await this.ping(this.clock, epoch);
        // A failed ping (timeout) still reports the estimate and keeps the cadence.
        if (epoch === this.deps.epoch() && !this.deps.closed()) await this.round(epoch);
      })();
    }, cfg.intervalMs);
  }
}

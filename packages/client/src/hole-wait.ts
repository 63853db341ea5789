/**
 * How long a hole in a room's seq stream waits for a late broadcast before `room:catchup`.
 *
 * Two workers publishing into one room reorder each other by the time a message takes through
 * Redis pub/sub: a few ms when idle, hundreds when a worker is loaded. A fixed wait shorter than
 * that sends every client of the room to catch-up in the same instant, for events already on their
 * way: more load on the loaded worker, longer reordering, more catch-ups. So the wait learns from
 * what it sees. Each hole a late event fills, and each event a catch-up fetched that then arrives
 * live anyway, is a measured lateness. The wait is the larger of the floor (`holeWaitMs`) and
 * twice the largest recent lateness (halved every `HALF_LIFE_MS`), capped at `maxMs`, plus a
 * random 0–50 % so a room's clients spread what catch-ups remain.
 */
export const HOLE_WAIT_HALF_LIFE_MS = 30_000;
/** Default cap of the learned wait (TetherClientOptions.holeWaitMaxMs). */
export const DEFAULT_HOLE_WAIT_MAX_MS = 5000;
/** Default floor of the wait (TetherClientOptions.holeWaitMs). */
export const DEFAULT_HOLE_WAIT_MS = 300;
/** How long after a catch-up a live copy of what it fetched still counts as late (not as a resend). */
export const LATE_COPY_WINDOW_MS = 10_000;

export class HoleWait {
  private lateMs = 0;
  private lateAt = 0;

  constructor(
    private readonly floorMs: number,
    private readonly maxMs: number,
    private readonly now: () => number,
    private readonly random: () => number,
  ) {}

  /** A broadcast arrived `ms` after the hole it filled was seen (or after a catch-up fetched it). */
  observe(ms: number): void {
    if (!(ms > 0)) return;
    const t = this.now();
    this.lateMs = Math.max(this.decayed(t), ms);
    this.lateAt = t;
  }

  /** The learned wait, without jitter. */
  get baseMs(): number {
    return Math.min(this.maxMs, Math.max(this.floorMs, 2 * this.decayed(this.now())));
  }

  /** The wait for the hole seen now. */
  next(): number {
    return Math.round(this.baseMs * (1 + 0.5 * this.random()));
  }

  private decayed(t: number): number {
    if (this.lateMs === 0) return 0;
    return this.lateMs * 0.5 ** (Math.max(0, t - this.lateAt) / HOLE_WAIT_HALF_LIFE_MS);
  }
}

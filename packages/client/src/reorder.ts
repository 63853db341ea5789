/**
 * Exactly-once, in-order delivery of a room's sequenced events.
 *
 * Two workers can broadcast to one room at once, a catch-up page can overlap the live stream and
 * a replay after a reconnect can repeat what the client already holds, so events reach the client
 * in any order and some more than once. The buffer knows the seq of the last event handed to the
 * application (`applied`); it keeps later events until every seq before them has arrived, drops
 * anything at or below `applied` or already buffered, and says where the holes are so the caller
 * can ask the server for exactly those events.
 *
 * Pure and synchronous: no timers, no I/O (the Room owns the "wait, then catch up" policy).
 */

export interface Released<T> {
  seq: number;
  item: T;
}

/** An inclusive range of seqs known to be missing. */
export interface Hole {
  from: number;
  to: number;
}

export type PushOutcome = 'buffered' | 'duplicate';

export class ReorderBuffer<T> {
  private appliedSeq: number;
  private readonly pending = new Map<number, T>();
  private maxBuffered = 0;

  constructor(applied = 0) {
    assertSeq(applied, 'applied');
    this.appliedSeq = applied;
  }

  /** Seq of the last event released (or the baseline the buffer was reset to). */
  get applied(): number {
    return this.appliedSeq;
  }

  /** Number of events held back because an earlier seq is missing. */
  get size(): number {
    return this.pending.size;
  }

  /** Highest seq the buffer has seen (released or held). */
  get highest(): number {
    return Math.max(this.appliedSeq, this.maxBuffered);
  }

  /**
   * The highest seq up to which nothing is missing: `applied` plus the run of consecutive held
   * events after it (what `drain()` would release now). Above it and below the known head is a hole.
   */
  get contiguous(): number {
    let seq = this.appliedSeq;
    while (this.pending.has(seq + 1)) seq++;
    return seq;
  }

  /** True when events are held back behind a missing seq. */
  get hasHole(): boolean {
    return this.pending.size > 0 && !this.pending.has(this.appliedSeq + 1);
  }

  /** Offers one event. Nothing is released here: call `drain()`. */
  push(seq: number, item: T): PushOutcome {
    assertSeq(seq, 'seq');
    if (seq <= this.appliedSeq || this.pending.has(seq)) return 'duplicate';
    this.pending.set(seq, item);
    if (seq > this.maxBuffered) this.maxBuffered = seq;
    return 'buffered';
  }

  /** Releases the run of consecutive events that follows `applied`, in seq order. */
  drain(): Released<T>[] {
    const out: Released<T>[] = [];
    for (;;) {
      const next = this.appliedSeq + 1;
      if (!this.pending.has(next)) break;
      const item = this.pending.get(next) as T;
      this.pending.delete(next);
      this.appliedSeq = next;
      out.push({ seq: next, item });
    }
    return out;
  }

  /** Every missing range between `applied` and the highest buffered seq, ascending. */
  holes(): Hole[] {
    if (this.pending.size === 0) return [];
    const seqs = [...this.pending.keys()].sort((a, b) => a - b);
    const holes: Hole[] = [];
    let expected = this.appliedSeq + 1;
    for (const seq of seqs) {
      if (seq > expected) holes.push({ from: expected, to: seq - 1 });
      expected = seq + 1;
    }
    return holes;
  }

  /**
   * Moves the baseline to `applied` (a state snapshot replaced everything up to it): held events
   * at or below it are dropped, later ones are kept. The baseline may move backwards only when a
   * room was recreated; the caller decides that.
   */
  reset(applied: number): number {
    assertSeq(applied, 'applied');
    let dropped = 0;
    for (const seq of [...this.pending.keys()]) {
      if (seq <= applied) {
        this.pending.delete(seq);
        dropped++;
      }
    }
    this.appliedSeq = applied;
    this.maxBuffered = this.pending.size ? Math.max(...this.pending.keys()) : 0;
    return dropped;
  }

  /** Drops everything held (the room handle is closing). */
  clear(): void {
    this.pending.clear();
    this.maxBuffered = 0;
  }
}

function assertSeq(seq: number, what: string): void {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`${what} must be a non-negative safe integer, got ${seq}`);
}

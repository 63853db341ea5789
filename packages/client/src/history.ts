import type { CatchupResult, LogEntry } from '@tether/protocol';
import { ClientError } from './errors.js';

/** What a history read needs: the room's position and a way to send `room:catchup`. */
export interface HistorySource {
  readonly roomId: string;
  /** The incarnation `upTo` counts in (null: the server did not say). */
  readonly incarnation: string | null;
  /** Page size of one request (the server caps it at CATCHUP_PAGE_SIZE). */
  readonly pageLimit: number;
  catchup(payload: { roomId: string; fromSeq: number; incarnation?: string; limit: number }): Promise<CatchupResult>;
}

export interface HistoryPage {
  /** Sequenced events with `fromSeq < seq <= upTo`, oldest first, as the log holds them. */
  events: LogEntry[];
  /**
   * true: `events` is the whole range. false: the log no longer reaches back to `fromSeq + 1`
   * (retention: CATCHUP_MAX_EVENTS, CATCHUP_TTL_MS) and `events` is the newest part it still
   * holds (possibly none), or the room is another incarnation than `upTo` counts in (no events).
   */
  recovered: boolean;
  fromSeq: number;
  upTo: number;
}

/**
 * Reads the events of (upTo - limit, upTo] from the room's log with `room:catchup`, page by page.
 *
 * catch-up never answers a partial replay: a `fromSeq` the log no longer reaches back to gets
 * `recovered: false` and no events at all. A room idle for longer than CATCHUP_TTL_MS then would
 * show nothing of the messages that are still logged after the gap, so the oldest position the
 * log still answers is found by bisection (at most ⌈log2(limit)⌉ more requests, only then).
 */
export async function readHistory(src: HistorySource, upTo: number, limit: number): Promise<HistoryPage> {
  const fromSeq = Math.max(0, upTo - limit);
  if (fromSeq === upTo) return { events: [], recovered: true, fromSeq, upTo };
  const read = (from: number) =>
    src.catchup({
      roomId: src.roomId,
      fromSeq: from,
      ...(src.incarnation === null ? {} : { incarnation: src.incarnation }),
      limit: Math.max(1, Math.min(upTo - from, src.pageLimit)),
    });
  const otherLife = (res: CatchupResult) => src.incarnation !== null && typeof res.incarnation === 'string' && res.incarnation !== src.incarnation;

  let start = fromSeq;
  let first = await read(fromSeq);
  if (otherLife(first)) return { events: [], recovered: false, fromSeq, upTo };
  const recovered = first.recovered;
  if (!recovered) {
    // Recoverable is monotone in the position: the log keeps a suffix of the room's seqs.
    let bad = fromSeq;
    let good = upTo;
    let best: CatchupResult | null = null;
    while (good - bad > 1) {
      const mid = Math.floor((bad + good) / 2);
      const res = await read(mid);
      if (otherLife(res)) return { events: [], recovered: false, fromSeq, upTo };
      if (res.recovered) {
        good = mid;
        best = res;
      } else bad = mid;
    }
    if (!best) return { events: [], recovered: false, fromSeq, upTo };
    start = good;
    first = best;
  }

  const events: LogEntry[] = [];
  let cursor = start;
  let res: CatchupResult = first;
  for (;;) {
    for (const e of res.events) {
      if (e.seq > cursor && e.seq <= upTo) {
        events.push(e);
        cursor = e.seq;
      }
    }
    if (cursor >= upTo || res.events.length === 0 || !res.more) break;
    res = await read(cursor);
    if (otherLife(res)) return { events: [], recovered: false, fromSeq, upTo };
    // The log moved past us between two pages (a burst trimmed it): what we have is still in order.
    if (!res.recovered) return { events, recovered: false, fromSeq, upTo };
  }
  return { events, recovered, fromSeq, upTo };
}

export function checkHistoryOptions(limit: unknown, before: unknown): void {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new ClientError('INVALID_PAYLOAD', 'history: limit must be an integer from 1 to 10000');
  }
  if (before !== undefined && (typeof before !== 'number' || !Number.isInteger(before) || before < 0)) {
    throw new ClientError('INVALID_PAYLOAD', 'history: before must be a seq (an integer ≥ 0)');
  }
}

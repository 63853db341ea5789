import type { RoomHead, RoomStatePayload } from '@tether/protocol';
import { backoffDelay } from './backoff.js';
import { DEFAULT_DELIVERY_HOLD_MS, DeliveryGate } from './delivery.js';
import { ClientError, toClientError } from './errors.js';
import { DEFAULT_HOLE_WAIT_MAX_MS, HoleWait, LATE_COPY_WINDOW_MS } from './hole-wait.js';
import { ReorderBuffer } from './reorder.js';
import type { RoomHost } from './host.js';
import type { JoinOptions, SequencedEntry } from './types.js';

type Timer = ReturnType<typeof setTimeout>;

/** What the sync machine drives in its room handle. */
export interface SyncTarget {
  readonly id: string;
  readonly kind: 'room' | 'program';
  readonly joinOptions: JoinOptions;
  readonly closed: boolean;
  /** A state payload replaces the room's state wholesale (shown to the app by `showState`). */
  applyState(state: RoomStatePayload): void;
  /** Emits the current state to the app ('state'). */
  showState(): void;
  /** One event, in seq order, exactly once. */
  applyEntry(entry: SequencedEntry): void;
  /** The first baseline is in: join() may resolve. */
  firstBaseline(): void;
  /** A later baseline is in (reconnect, resync). */
  resumed(recovered: boolean): void;
  /** A sync started: the room is not live until it is done. */
  syncing(): void;
  /** The room is live on this connection (clock sync, outbox). */
  live(): void;
  /** Unrecoverable: the handle closes with this error. */
  fail(error: ClientError): void;
}

/** The "stale" marker of an async flow overtaken by a disconnect, a newer sync or a close. */
const STALE = Symbol('stale');

/**
 * A room's synchronisation with the server: its baseline (join, rejoin, snapshot), its sequenced
 * stream delivered exactly once in seq order, and the gaps in it.
 *
 * Every sequenced event (live broadcast, replay, catch-up page) goes through a ReorderBuffer.
 * While the room is (re)synchronising — joining, rejoining, loading a snapshot — the buffer only
 * collects; releasing resumes once the baseline is known, so a snapshot can never land on top of
 * events applied after it. A hole waits `holeWaitMs` for a late broadcast (two workers publishing
 * at once reorder each other), then is fetched with room:catchup; a log that no longer reaches
 * back makes the room reload a snapshot and say so (`resumed {recovered:false}`).
 */
export class RoomSync {
  private readonly buffer = new ReorderBuffer<SequencedEntry>(0);
  private baseline = false;
  /** True while a sync decides the baseline: events are collected, not released. */
  private holding = true;
  /** Highest seq known to exist (seen, or announced by an ack or a room:head): contiguous < head means a gap. */
  private head = 0;
  /**
   * The room life `applied` and `head` count in (null: the server did not say). A position is
   * (incarnation, seq): a room recreated under the same code starts its seq again under a new
   * incarnation, and a seq of another incarnation is never continued.
   */
  private incarnationValue: string | null = null;
  private liveValue = false;
  private syncing = false;
  private syncEpoch = -1;
  private syncGen = 0;
  private syncRetryAttempt = 0;
  private expectingSnapshot = false;
  private filling = false;
  private holeTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  /** The wait before a hole is fetched, learned from how late broadcasts arrive (hole-wait.ts). */
  private readonly holeWait: HoleWait;
  /** When the hole the timer waits on was seen (0: no hole waiting). */
  private holeSince = 0;
  /** The last catch-up: the seqs it fetched and when their hole was seen, to learn from their live copies. */
  private fetched: { fromSeq: number; toSeq: number; since: number; until: number } | null = null;
  private inCatchup = false;
  /** When the stream starts reaching the app (a fresh handle waits for its first listener). */
  private readonly delivery: DeliveryGate;

  constructor(
    private readonly host: RoomHost,
    private readonly room: SyncTarget,
  ) {
    const settings = host.settings;
    this.holeWait = new HoleWait(settings.holeWaitMs, Math.max(settings.holeWaitMs, settings.holeWaitMaxMs ?? DEFAULT_HOLE_WAIT_MAX_MS), settings.now ?? Date.now, settings.random);
    this.delivery = new DeliveryGate(
      () => host.settings.deliveryHoldMs ?? DEFAULT_DELIVERY_HOLD_MS,
      (showState) => {
        if (room.closed) return;
        if (showState) room.showState();
        if (!this.holding) this.release();
      },
    );
  }

  /** Seq of the last event released to the room (or of the snapshot that replaced them). */
  get applied(): number {
    return this.buffer.applied;
  }

  get incarnation(): string | null {
    return this.incarnationValue;
  }

  get hasBaseline(): boolean {
    return this.baseline;
  }

  get live(): boolean {
    return this.liveValue;
  }

  /** The app attached a listener for the room's stream ('state', 'event', 'sequenced', …): see DeliveryGate. */
  listening(): void {
    this.delivery.listening(this.baseline);
  }

  /** A handshake completed: (re)join or rejoin, catch up. */
  resume(): void {
    if (this.room.closed) return;
    // join() and the handshake can both ask on the same connection: one sync is enough.
    if (this.syncing && this.syncEpoch === this.host.connEpoch) return;
    void this.sync('resume');
  }

  /** The server said we are not a member (a publish refused): rejoin unless a sync is running. */
  rejoin(): void {
    if (!this.syncing && !this.room.closed) void this.sync('resume');
  }

  onDisconnected(): void {
    this.liveValue = false;
    this.holding = true;
    this.syncGen++;
    this.syncing = false;
    this.expectingSnapshot = false;
    this.clearTimers();
  }

  /** A sequenced event for this room, live, replayed or from a catch-up page. */
  receive(entry: SequencedEntry): void {
    if (this.room.closed) return;
    if (this.baseline && entry.seq <= this.buffer.applied) return this.lateCopy(entry.seq);
    if (this.buffer.push(entry.seq, entry) === 'duplicate') return this.lateCopy(entry.seq);
    if (entry.seq > this.head) this.head = entry.seq;
    if (!this.holding) this.release();
  }

  /** A copy of an event we hold: if a catch-up fetched it, the broadcast was this late (the wait was too short). */
  private lateCopy(seq: number): void {
    const f = this.fetched;
    if (this.inCatchup || !f || seq <= f.fromSeq || seq > f.toSeq) return;
    const now = this.now();
    if (now > f.until) {
      this.fetched = null;
      return;
    }
    this.holeWait.observe(now - f.since);
  }

  private now(): number {
    return (this.host.settings.now ?? Date.now)();
  }

  /**
   * room:head, the room's current position, sent periodically to rooms with recent activity: a
   * broadcast lost on a connection that stayed up (a worker died between append and emit, a
   * pub/sub message lost in a Redis blip) shows as a head above what we hold. Same incarnation:
   * the gap is filled like any other (after `holeWaitMs`, which lets a broadcast racing the head
   * arrive first). Another incarnation: the room was recreated; resync from a snapshot.
   */
  receiveHead(head: RoomHead): void {
    if (this.room.closed || !this.liveValue || typeof head.seq !== 'number') return;
    if (this.incarnationValue !== null && typeof head.incarnation === 'string' && head.incarnation !== this.incarnationValue) {
      void this.sync('resync');
      return;
    }
    if (head.seq <= this.head) return;
    this.head = head.seq;
    if (this.buffer.contiguous < this.head) this.armHoleTimer();
  }

  /** room:state_snapshot: applied only when this room asked for it (a rejoin in flight). */
  receiveSnapshot(snapshot: RoomStatePayload): void {
    if (this.room.closed || !this.expectingSnapshot) return;
    this.applyState(snapshot);
  }

  close(): void {
    this.liveValue = false;
    this.syncGen++;
    this.clearTimers();
    this.delivery.close();
    this.buffer.clear();
  }

  /**
   * Brings the room to a known baseline on the current connection. 'resume' rejoins from the last
   * applied seq (replay, or snapshot when the log is too short); 'resync' asks for a snapshot
   * outright (catch-up said the log no longer reaches back).
   */
  private async sync(mode: 'resume' | 'resync'): Promise<void> {
    if (!this.host.connected) return;
    const gen = ++this.syncGen;
    const epoch = this.host.connEpoch;
    const stale = () => gen !== this.syncGen || epoch !== this.host.connEpoch || this.room.closed;
    this.syncing = true;
    this.syncEpoch = epoch;
    this.liveValue = false;
    this.holding = true;
    this.clearTimers();
    this.room.syncing();
    const first = !this.baseline;
    let recovered: boolean;
    try {
      if (first && this.room.kind === 'room') {
        await this.join(stale);
        recovered = false;
      } else {
        try {
          recovered = await this.rejoinRequest(stale, mode === 'resume' && this.baseline ? this.buffer.contiguous : undefined);
        } catch (err) {
          if (err === STALE) throw err;
          const e = toClientError(err);
          // Evicted after the grace period, or this client got a new identity: take a new seat.
          if (e.code === 'NOT_IN_ROOM' && this.room.kind === 'room' && this.host.settings.rejoinAfterEviction) {
            await this.join(stale);
            recovered = false;
          } else throw e;
        }
      }
    } catch (err) {
      if (err === STALE || stale()) return;
      this.syncing = false;
      const e = toClientError(err);
      // A full room is worth retrying for a member coming back, not for a first join: the app decides.
      if (e.retryable && !(first && e.code === 'ROOM_FULL')) {
        // Also covers a join that timed out: room:join is idempotent for a member (answered as a rejoin).
        const delay = backoffDelay(++this.syncRetryAttempt, this.host.settings.retry, this.host.settings.random);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          if (epoch === this.host.connEpoch) void this.sync(mode);
        }, delay);
        return;
      }
      this.room.fail(e);
      return;
    }
    if (stale()) return;
    this.syncing = false;
    this.syncRetryAttempt = 0;
    this.holding = false;
    this.liveValue = true;
    if (first) {
      this.delivery.firstState();
      this.room.firstBaseline();
    }
    this.release();
    if (this.room.closed) return;
    // A paused handle has shown the app nothing yet: its first 'state' will be the current one.
    if (!first && this.delivery.flowing) this.room.resumed(recovered);
    if (this.room.closed) return;
    this.room.live();
    if (this.buffer.contiguous < this.head) void this.fillGap();
  }

  private async join(stale: () => boolean): Promise<void> {
    const { password, guestName } = this.room.joinOptions;
    const res = await this.host.request('room:join', {
      roomCode: this.room.id,
      ...(password !== undefined ? { password } : {}),
      ...(guestName !== undefined ? { guestName } : {}),
      // The state arrives in the ack; a second copy as room:state would only be dropped.
      ...(this.host.serverOffers?.('join.stateEvent') ? { stateEvent: false } : {}),
    });
    if (stale()) throw STALE;
    const { self: _self, ...state } = res;
    this.applyState(state);
  }

  /** room:rejoin; true when the server replayed (recovered), false when it sent a snapshot. */
  private async rejoinRequest(stale: () => boolean, lastSeq: number | undefined): Promise<boolean> {
    this.expectingSnapshot = true;
    let res;
    try {
      res = await this.host.request('room:rejoin', this.position(lastSeq));
    } finally {
      if (!stale()) this.expectingSnapshot = false;
    }
    if (stale()) throw STALE;
    // Replayed events and any snapshot were emitted before the ack on this socket, so they are in.
    if (!res.recovered && !this.baseline) throw new ClientError('INTERNAL_ERROR', 'rejoin answered without a snapshot');
    if (res.recovered && this.otherIncarnation(res.incarnation)) {
      // A replay of another life of the room cannot continue ours (a server that ignored the
      // incarnation we sent): ask for a snapshot instead.
      return this.rejoinRequest(stale, undefined);
    }
    if (res.seq > this.head) this.head = res.seq;
    return res.recovered;
  }

  /** A rejoin position: lastSeq with the incarnation it counts in, or nothing (snapshot). */
  private position(lastSeq: number | undefined): { roomId: string; lastSeq?: number; incarnation?: string } {
    if (lastSeq === undefined) return { roomId: this.room.id };
    return this.incarnationValue === null ? { roomId: this.room.id, lastSeq } : { roomId: this.room.id, lastSeq, incarnation: this.incarnationValue };
  }

  private otherIncarnation(incarnation: unknown): boolean {
    return this.incarnationValue !== null && typeof incarnation === 'string' && incarnation !== this.incarnationValue;
  }

  private applyState(state: RoomStatePayload): void {
    const incarnation = typeof state.incarnation === 'string' ? state.incarnation : null;
    // Events held from another life of the room carry seqs that mean nothing in this one.
    if (incarnation !== this.incarnationValue && this.incarnationValue !== null) this.buffer.clear();
    this.incarnationValue = incarnation;
    this.buffer.reset(state.seq);
    // A room recreated under the same code starts again from a lower seq.
    this.head = Math.max(state.seq, this.buffer.highest);
    this.baseline = true;
    this.room.applyState(state);
    if (this.delivery.stateReplaced()) this.room.showState();
  }

  /** Hands the run of consecutive events to the room (when flowing), and watches for holes. */
  private release(): void {
    if (this.delivery.flowing) {
      for (const { item } of this.buffer.drain()) {
        this.room.applyEntry(item);
        if (this.room.closed) return;
      }
    }
    if (this.buffer.contiguous < this.head) this.armHoleTimer();
    else {
      // A hole that a late event filled while its timer waited: that lateness teaches the wait.
      if (this.holeSince && this.holeTimer && !this.filling) this.holeWait.observe(this.now() - this.holeSince);
      this.holeSince = 0;
      this.clearHoleTimer();
    }
  }

  private armHoleTimer(): void {
    if (this.holeTimer || this.filling || !this.liveValue) return;
    if (!this.holeSince) this.holeSince = this.now();
    this.holeTimer = setTimeout(() => {
      this.holeTimer = undefined;
      if (this.liveValue && this.buffer.contiguous < this.head) void this.fillGap();
    }, this.holeWait.next());
  }

  /** The wait a hole seen now would get, before jitter (for tests and diagnostics). */
  get holeWaitMs(): number {
    return this.holeWait.baseMs;
  }

  /**
   * Fetches what is missing between the contiguous seq (applied, or held in order while delivery
   * is paused) and the known head, page by page.
   */
  private async fillGap(): Promise<void> {
    if (this.filling) return;
    this.filling = true;
    const epoch = this.host.connEpoch;
    const gen = this.syncGen;
    const stale = () => gen !== this.syncGen || epoch !== this.host.connEpoch || this.room.closed;
    let resync = false;
    let retryAfter = 0;
    try {
      let attempt = 0;
      while (!stale() && this.liveValue && this.buffer.contiguous < this.head) {
        const from = this.buffer.contiguous;
        let res;
        try {
          res = await this.host.request('room:catchup', {
            roomId: this.room.id,
            fromSeq: from,
            ...(this.incarnationValue === null ? {} : { incarnation: this.incarnationValue }),
            limit: this.host.settings.catchupLimit,
          });
        } catch (err) {
          if (stale()) return;
          const e = toClientError(err);
          if (e.code === 'NOT_IN_ROOM') {
            resync = true;
            return;
          }
          if (!e.retryable || ++attempt > 5) throw e;
          retryAfter = backoffDelay(attempt, this.host.settings.retry, this.host.settings.random);
          return;
        }
        if (stale()) return;
        if (!res.recovered || this.otherIncarnation(res.incarnation)) {
          resync = true;
          return;
        }
        if (res.seq > this.head) this.head = res.seq;
        if (res.events.length) {
          const now = this.now();
          this.fetched = { fromSeq: from, toSeq: res.events[res.events.length - 1]!.seq, since: this.holeSince || now, until: now + LATE_COPY_WINDOW_MS };
        }
        this.inCatchup = true;
        try {
          for (const e of res.events) this.receive({ name: e.name, seq: e.seq, payload: e.payload } as SequencedEntry);
        } finally {
          this.inCatchup = false;
        }
        if (this.buffer.contiguous === from) {
          // The log answered but did not move us: our head belongs to an older incarnation of the room.
          resync = true;
          return;
        }
      }
    } catch {
      // Catch-up keeps failing: a snapshot is the way out (and closes the room if that fails too).
      resync = true;
    } finally {
      this.filling = false;
      if (this.buffer.contiguous >= this.head) this.holeSince = 0;
      if (!stale()) {
        if (resync) void this.sync('resync');
        else if (retryAfter) {
          this.holeTimer = setTimeout(() => {
            this.holeTimer = undefined;
            void this.fillGap();
          }, retryAfter);
        } else if (this.liveValue && this.buffer.contiguous < this.head) this.armHoleTimer();
      }
    }
  }

  private clearHoleTimer(): void {
    if (this.holeTimer !== undefined) clearTimeout(this.holeTimer);
    this.holeTimer = undefined;
  }

  private clearTimers(): void {
    this.clearHoleTimer();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }
}

import type { Participant, PlaybackControlChanged, PlaybackEvent, PlaybackState, RoomInfo, RoomStatePayload } from '../protocol/events.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { ClientError } from './errors.js';
import { positionAt, shouldApplySync } from './playback.js';
import { ReorderBuffer } from './reorder.js';
import type {
  JoinOptions,
  OutgoingMessage,
  PublishStatus,
  RequestName,
  RequestPayload,
  RequestResult,
  RoomCloseReason,
  RoomEvents,
  RoomState,
  SequencedEntry,
} from './types.js';

/** What a Room needs from its TetherClient; kept narrow so the room logic stays testable. */
export interface RoomHost {
  /** Bumped on every handshake and every disconnect: async work started under another value is stale. */
  readonly connEpoch: number;
  /** A handshake completed and the socket is up. */
  readonly connected: boolean;
  readonly clientId: string | null;
  readonly settings: {
    holeWaitMs: number;
    catchupLimit: number;
    retry: BackoffOptions;
    rejoinAfterEviction: boolean;
    random: () => number;
  };
  request<E extends RequestName>(event: E, payload: RequestPayload<E>): Promise<RequestResult<E>>;
  newMessageId(): string;
  /** The room handle closed itself: forget it. */
  roomClosed(room: Room): void;
  /** A leave that could not reach the server now: send it on the next connection. */
  queueLeave(roomId: string): void;
  /** The server's clock now (local clock + the clock-sync offset). */
  serverNow(): number;
  /** The room reached a baseline on this connection (joined or resumed): clock sync, RTT report. */
  roomLive(room: Room): void;
}

export type RoomStatus = 'joining' | 'syncing' | 'live' | 'offline' | 'closed';

type Timer = ReturnType<typeof setTimeout>;

class Message implements OutgoingMessage {
  status: PublishStatus = 'pending';
  seq?: number;
  duplicate?: boolean;
  error?: ClientError;
  attempts = 0;
  /** Consecutive retryable server refusals (RATE_LIMITED, INTERNAL_ERROR, NOT_IN_ROOM). */
  refusals = 0;
  retryAt = 0;
  private promise?: Promise<{ seq: number; duplicate: boolean }>;
  private settle?: { resolve(v: { seq: number; duplicate: boolean }): void; reject(e: ClientError): void };

  constructor(
    readonly clientMsgId: string,
    readonly type: string,
    readonly data: unknown,
  ) {}

  // Created on demand: a promise nobody asked for must not turn a failure into an unhandled rejection.
  sent(): Promise<{ seq: number; duplicate: boolean }> {
    if (!this.promise) {
      if (this.status === 'sent') this.promise = Promise.resolve({ seq: this.seq!, duplicate: this.duplicate ?? false });
      else if (this.status === 'failed') this.promise = Promise.reject(this.error);
      else this.promise = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    }
    return this.promise;
  }

  markSent(seq: number, duplicate: boolean): void {
    this.status = 'sent';
    this.seq = seq;
    this.duplicate = duplicate;
    this.settle?.resolve({ seq, duplicate });
  }

  markFailed(error: ClientError): void {
    this.status = 'failed';
    this.error = error;
    this.settle?.reject(error);
  }
}

const ROOM_SCOPED: ReadonlySet<RequestName> = new Set<RequestName>([
  'room:leave', 'room:rejoin', 'room:publish', 'room:signal', 'room:catchup', 'sync:report',
  'playback:start', 'playback:pause', 'playback:seek', 'playback:stop', 'playback:grant',
]);

/** The "stale" marker of an async flow overtaken by a disconnect, a newer sync or a close. */
const STALE = Symbol('stale');

/**
 * One room as the application sees it: local state (participants, playback, seq) and a stream of
 * its sequenced events delivered exactly once, in seq order, across reconnects.
 *
 * Delivery: every sequenced event (live broadcast, replay, catch-up page) goes through a
 * ReorderBuffer. While the room is (re)synchronising — joining, rejoining, loading a snapshot —
 * the buffer only collects; releasing resumes once the baseline is known, so a snapshot can never
 * land on top of events applied after it. A hole waits `holeWaitMs` for a late broadcast (two
 * workers publishing at once reorder each other), then is fetched with room:catchup; a log that no
 * longer reaches back makes the room reload a snapshot and say so (`resumed {recovered:false}`).
 *
 * Publishing: one FIFO outbox with at most one message in flight, so a room's messages from this
 * client are published in publish() order. A message keeps its clientMsgId across resends, and the
 * server answers a resend of an already published message with the original seq.
 */
export class Room extends Emitter<RoomEvents> {
  private infoValue: RoomInfo | null = null;
  private readonly members = new Map<string, Participant>();
  private playbackValue: PlaybackState | null = null;
  private serverTimestampValue = 0;
  private readonly buffer = new ReorderBuffer<SequencedEntry>(0);
  private hasBaseline = false;
  /** True while a sync decides the baseline: events are collected, not released. */
  private holding = true;
  /** Highest seq known to exist (seen or announced by an ack): applied < head means a gap. */
  private head = 0;
  private live = false;
  private syncing = false;
  private syncEpoch = -1;
  private syncGen = 0;
  private syncRetryAttempt = 0;
  private expectingSnapshot = false;
  private filling = false;
  private closedReason: RoomCloseReason | null = null;
  private holeTimer: Timer | undefined;
  private retryTimer: Timer | undefined;
  private outboxTimer: Timer | undefined;
  private readonly outbox: Message[] = [];
  private sending = false;
  private readonly readyPromise: Promise<Room>;
  private readyResolve!: (room: Room) => void;
  private readyReject!: (err: ClientError) => void;

  constructor(
    private readonly host: RoomHost,
    readonly id: string,
    readonly kind: 'room' | 'program',
    private readonly joinOptions: JoinOptions = {},
  ) {
    super();
    this.readyPromise = new Promise<Room>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.readyPromise.catch(() => undefined);
  }

  // ---- state the application reads -------------------------------------------------------------

  /** Seq of the last event handed to the application (or of the snapshot that replaced them). */
  get seq(): number {
    return this.buffer.applied;
  }

  get info(): RoomInfo | null {
    return this.infoValue;
  }

  get participants(): Participant[] {
    return [...this.members.values()];
  }

  participant(clientId: string): Participant | undefined {
    return this.members.get(clientId);
  }

  /** This client's participant entry (null for program rooms that list no member for it). */
  get self(): Participant | null {
    const id = this.host.clientId;
    return (id && this.members.get(id)) || null;
  }

  /**
   * Playback state as of the last applied (sequenced) playback event or snapshot; null before the
   * first state. `playback:sync` never changes it. Positions: `currentPosition()`, `positionAt(t)`.
   */
  get playback(): PlaybackState | null {
    return this.playbackValue;
  }

  /** Whether this client may start/pause/seek/stop here: the host, or a member granted control. */
  get canControl(): boolean {
    const self = this.self;
    return this.kind === 'room' && !!self && (self.role === 'host' || self.canControl);
  }

  /**
   * The track position (ms) at server time `serverTime`, from `room.playback`: frozen while paused,
   * advancing 1 ms per server ms after `startAtServerTime` while playing. 0 before the first state.
   */
  positionAt(serverTime: number): number {
    return this.playbackValue ? positionAt(this.playbackValue, serverTime) : 0;
  }

  /** The track position now, in server time (`client.serverNow()`): where every player in the room should be. */
  currentPosition(): number {
    return this.positionAt(this.host.serverNow());
  }

  get status(): RoomStatus {
    if (this.closedReason) return 'closed';
    if (!this.hasBaseline) return 'joining';
    if (this.live) return 'live';
    return this.host.connected ? 'syncing' : 'offline';
  }

  get state(): RoomState | null {
    if (!this.infoValue || !this.playbackValue) return null;
    return { info: this.infoValue, participants: this.participants, playback: this.playbackValue, seq: this.seq, serverTimestamp: this.serverTimestampValue };
  }

  /** Messages not yet acked by the server, oldest first. */
  get pending(): OutgoingMessage[] {
    return [...this.outbox];
  }

  /** Resolves once the room has its first state (join done); rejects if that fails. */
  ready(): Promise<Room> {
    return this.readyPromise;
  }

  // ---- application actions ---------------------------------------------------------------------

  /**
   * Publishes an app event. Never throws: the returned message goes pending → sent (with seq) or
   * failed (with error); `room` emits 'publish' on each change. Offline, it waits in the outbox
   * and is sent after the room is resumed.
   */
  publish(type: string, data: unknown, opts: { clientMsgId?: string } = {}): OutgoingMessage {
    const msg = new Message(opts.clientMsgId ?? this.host.newMessageId(), type, data ?? null);
    if (this.closedReason) {
      msg.markFailed(new ClientError('CLOSED', `room ${this.id} is closed`));
      return msg;
    }
    this.outbox.push(msg);
    this.emit('publish', msg);
    this.flushOutbox();
    return msg;
  }

  /** Sends an ephemeral signal to the other members. Not queued: rejects with OFFLINE when not live. */
  async signal(type: string, data: unknown): Promise<void> {
    if (this.closedReason) throw new ClientError('CLOSED');
    if (!this.live) throw new ClientError('OFFLINE', `room ${this.id} is not live`);
    await this.host.request('room:signal', { roomId: this.id, type, data: (data ?? null) as never });
  }

  /**
   * A request of the wire contract aimed at this room (roomId filled in): the extension point for
   * helpers such as playback controls. Rejects with OFFLINE when not connected.
   */
  request<E extends RequestName>(event: E, payload: Omit<RequestPayload<E>, 'roomId'>): Promise<RequestResult<E>> {
    // The server's schemas are strict: only requests that take a roomId get one.
    const scoped = ROOM_SCOPED.has(event) ? { ...payload, roomId: this.id } : payload;
    return this.host.request(event, scoped as RequestPayload<E>);
  }

  // ---- playback controls (host, or members granted control) ---------------------------------------

  /**
   * Loads `trackId` at `positionMs` (default 0) and plays it from the ack's `startAtServerTime`.
   * Resolves with the PlaybackEvent (already applied to `room.playback` when nothing is missing
   * before its seq); rejects with a ClientError: UNAUTHORIZED (no control), NOT_IN_ROOM, OFFLINE...
   */
  play(trackId: string, positionMs?: number): Promise<PlaybackEvent> {
    return this.command('playback:start', positionMs === undefined ? { trackId } : { trackId, positionMs });
  }

  /** Pauses at `positionMs`, or where the track will be when the pause takes effect. */
  pause(positionMs?: number): Promise<PlaybackEvent> {
    return this.command('playback:pause', positionMs === undefined ? {} : { positionMs });
  }

  /** Jumps to `positionMs`, keeping playing/paused. INVALID_PAYLOAD when nothing is loaded. */
  seek(positionMs: number): Promise<PlaybackEvent> {
    return this.command('playback:seek', { positionMs });
  }

  /** Unloads the track. */
  stop(): Promise<PlaybackEvent> {
    return this.command('playback:stop', {});
  }

  /** Host only: lets `clientId` control playback (or takes it back). */
  grantControl(clientId: string, allowed: boolean): Promise<PlaybackControlChanged> {
    return this.command('playback:grant', { clientId, allowed });
  }

  private async command<E extends 'playback:start' | 'playback:pause' | 'playback:seek' | 'playback:stop' | 'playback:grant'>(
    event: E,
    payload: Omit<RequestPayload<E>, 'roomId'>,
  ): Promise<RequestResult<E>> {
    if (this.closedReason) throw new ClientError('CLOSED', `room ${this.id} is closed`);
    const res = await this.request(event, payload);
    // The ack is the sequenced event itself (its broadcast reaches this socket too): feeding it to
    // the reorder buffer makes room.playback current when the call resolves; the copy is dropped.
    const ev = res as PlaybackEvent | PlaybackControlChanged;
    if (ev && ev.roomId === this.id && typeof ev.seq === 'number') {
      const name = event === 'playback:grant' ? 'playback:control' : (`playback:${(ev as PlaybackEvent).action}` as const);
      this.receive({ name, seq: ev.seq, payload: ev } as SequencedEntry);
    }
    return res;
  }

  /**
   * Leaves the room. The handle closes at once (pending publishes fail with CLOSED); the server is
   * told now, or on the next connection when offline. Program rooms only close the handle: their
   * membership comes from the JWT.
   */
  async leave(): Promise<void> {
    if (this.closedReason) return;
    const online = this.host.connected;
    this.close('left');
    if (this.kind === 'program') return;
    if (!online) {
      this.host.queueLeave(this.id);
      return;
    }
    try {
      await this.host.request('room:leave', { roomId: this.id });
    } catch (err) {
      const e = toClientError(err);
      if (e.code === 'NOT_IN_ROOM' || e.code === 'ROOM_NOT_FOUND') return;
      if (e.code === 'DISCONNECTED' || e.code === 'TIMEOUT' || e.code === 'OFFLINE') {
        this.host.queueLeave(this.id);
        return;
      }
      throw e;
    }
  }

  // ---- driven by the TetherClient ------------------------------------------------------------------

  /** A handshake completed: (re)join or rejoin, catch up, then flush the outbox. */
  resume(): void {
    if (this.closedReason) return;
    // join() and the handshake can both ask on the same connection: one sync is enough.
    if (this.syncing && this.syncEpoch === this.host.connEpoch) return;
    void this.sync('resume');
  }

  onDisconnected(): void {
    this.live = false;
    this.holding = true;
    this.syncGen++;
    this.syncing = false;
    this.expectingSnapshot = false;
    this.clearTimer('holeTimer');
    this.clearTimer('retryTimer');
    this.clearTimer('outboxTimer');
  }

  /** A sequenced event for this room, live, replayed or from a catch-up page. */
  receive(entry: SequencedEntry): void {
    if (this.closedReason) return;
    if (this.hasBaseline && entry.seq <= this.buffer.applied) return;
    if (this.buffer.push(entry.seq, entry) === 'duplicate') return;
    if (entry.seq > this.head) this.head = entry.seq;
    if (!this.holding) this.release();
  }

  /** room:state_snapshot: applied only when this room asked for it (a rejoin in flight). */
  receiveSnapshot(snapshot: RoomStatePayload): void {
    if (this.closedReason || !this.expectingSnapshot) return;
    this.applyState(snapshot);
  }

  receiveSignal(signal: RoomEvents['signal']): void {
    if (!this.closedReason) this.emit('signal', signal);
  }

  /**
   * playback:sync is advice, not sequenced: it only reaches the app when it matches the playback
   * state the app has (same track, playing, stamped after the command took effect). While the room
   * is resynchronising its state may be stale, so syncs wait for the next one.
   */
  receivePlaybackSync(sync: RoomEvents['playback:sync']): void {
    if (this.closedReason || !this.live || !this.playbackValue) return;
    if (shouldApplySync(this.playbackValue, sync)) this.emit('playback:sync', sync);
  }

  /** Closes the handle; idempotent. */
  close(reason: RoomCloseReason, error?: ClientError): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    this.live = false;
    this.syncGen++;
    this.clearTimer('holeTimer');
    this.clearTimer('retryTimer');
    this.clearTimer('outboxTimer');
    this.buffer.clear();
    const failure = error ?? new ClientError('CLOSED', `room ${this.id} closed (${reason})`);
    for (const msg of this.outbox.splice(0)) {
      msg.markFailed(failure);
      this.emit('publish', msg);
    }
    this.readyReject(failure);
    this.host.roomClosed(this);
    this.emit('closed', error ? { reason, error } : { reason });
  }

  // ---- synchronisation ---------------------------------------------------------------------------

  /**
   * Brings the room to a known baseline on the current connection. 'resume' rejoins from the last
   * applied seq (replay, or snapshot when the log is too short); 'resync' asks for a snapshot
   * outright (catch-up said the log no longer reaches back).
   */
  private async sync(mode: 'resume' | 'resync'): Promise<void> {
    if (!this.host.connected) return;
    const gen = ++this.syncGen;
    const epoch = this.host.connEpoch;
    const stale = () => gen !== this.syncGen || epoch !== this.host.connEpoch || this.closedReason !== null;
    this.syncing = true;
    this.syncEpoch = epoch;
    this.live = false;
    this.holding = true;
    this.clearTimer('holeTimer');
    this.clearTimer('retryTimer');
    const first = !this.hasBaseline;
    let recovered: boolean;
    try {
      if (first && this.kind === 'room') {
        await this.join(stale);
        recovered = false;
      } else {
        try {
          recovered = await this.rejoin(stale, mode === 'resume' && this.hasBaseline ? this.buffer.applied : undefined);
        } catch (err) {
          if (err === STALE) throw err;
          const e = toClientError(err);
          // Evicted after the grace period, or this client got a new identity: take a new seat.
          if (e.code === 'NOT_IN_ROOM' && this.kind === 'room' && this.host.settings.rejoinAfterEviction) {
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
      this.close('error', e);
      return;
    }
    if (stale()) return;
    this.syncing = false;
    this.syncRetryAttempt = 0;
    this.holding = false;
    this.live = true;
    if (first) this.readyResolve(this);
    this.release();
    if (this.closedReason) return;
    if (!first) this.emit('resumed', { recovered });
    if (this.closedReason) return;
    this.host.roomLive(this);
    if (this.buffer.applied < this.head) void this.fillGap();
    this.flushOutbox();
  }

  private async join(stale: () => boolean): Promise<void> {
    const { password, guestName } = this.joinOptions;
    const res = await this.host.request('room:join', {
      roomCode: this.id,
      ...(password !== undefined ? { password } : {}),
      ...(guestName !== undefined ? { guestName } : {}),
    });
    if (stale()) throw STALE;
    const { self: _self, ...state } = res;
    this.applyState(state);
  }

  /** room:rejoin; true when the server replayed (recovered), false when it sent a snapshot. */
  private async rejoin(stale: () => boolean, lastSeq: number | undefined): Promise<boolean> {
    this.expectingSnapshot = true;
    let res;
    try {
      res = await this.host.request('room:rejoin', lastSeq === undefined ? { roomId: this.id } : { roomId: this.id, lastSeq });
    } finally {
      if (!stale()) this.expectingSnapshot = false;
    }
    if (stale()) throw STALE;
    // Replayed events and any snapshot were emitted before the ack on this socket, so they are in.
    if (!res.recovered && !this.hasBaseline) throw new ClientError('INTERNAL_ERROR', 'rejoin answered without a snapshot');
    if (res.seq > this.head) this.head = res.seq;
    return res.recovered;
  }

  private applyState(state: RoomStatePayload): void {
    this.infoValue = state.room;
    this.members.clear();
    for (const p of state.participants) this.members.set(p.clientId, p);
    this.playbackValue = state.playback;
    this.serverTimestampValue = state.serverTimestamp;
    this.buffer.reset(state.seq);
    // A room recreated under the same code starts again from a lower seq.
    this.head = Math.max(state.seq, this.buffer.highest);
    this.hasBaseline = true;
    this.emit('state', { info: state.room, participants: state.participants, playback: state.playback, seq: state.seq, serverTimestamp: state.serverTimestamp });
  }

  private release(): void {
    for (const { item } of this.buffer.drain()) {
      this.apply(item);
      if (this.closedReason) return;
    }
    if (this.buffer.applied < this.head) this.armHoleTimer();
    else this.clearTimer('holeTimer');
  }

  private armHoleTimer(): void {
    if (this.holeTimer || this.filling || !this.live) return;
    this.holeTimer = setTimeout(() => {
      this.holeTimer = undefined;
      if (this.live && this.buffer.applied < this.head) void this.fillGap();
    }, this.host.settings.holeWaitMs);
  }

  /** Fetches what is missing between the applied seq and the known head, page by page. */
  private async fillGap(): Promise<void> {
    if (this.filling) return;
    this.filling = true;
    const epoch = this.host.connEpoch;
    const gen = this.syncGen;
    const stale = () => gen !== this.syncGen || epoch !== this.host.connEpoch || this.closedReason !== null;
    let resync = false;
    let retryAfter = 0;
    try {
      let attempt = 0;
      while (!stale() && this.live && this.buffer.applied < this.head) {
        const from = this.buffer.applied;
        let res;
        try {
          res = await this.host.request('room:catchup', { roomId: this.id, fromSeq: from, limit: this.host.settings.catchupLimit });
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
        if (!res.recovered) {
          resync = true;
          return;
        }
        if (res.seq > this.head) this.head = res.seq;
        for (const e of res.events) this.receive({ name: e.name, seq: e.seq, payload: e.payload } as SequencedEntry);
        if (this.buffer.applied === from) {
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
      if (!stale()) {
        if (resync) void this.sync('resync');
        else if (retryAfter) this.holeTimer = setTimeout(() => {
          this.holeTimer = undefined;
          void this.fillGap();
        }, retryAfter);
        else if (this.live && this.buffer.applied < this.head) this.armHoleTimer();
      }
    }
  }

  private apply(entry: SequencedEntry): void {
    switch (entry.name) {
      case 'room:event':
        this.emit('event', entry.payload);
        break;
      case 'room:participant:joined':
        this.members.set(entry.payload.participant.clientId, entry.payload.participant);
        this.emit('participant:joined', entry.payload);
        break;
      case 'room:participant:left': {
        this.members.delete(entry.payload.clientId);
        // When the host leaves, the server hands the room to the longest-present member.
        const newHost = entry.payload.newHostClientId;
        if (newHost) {
          const p = this.members.get(newHost);
          if (p) this.members.set(newHost, { ...p, role: 'host', canControl: true });
          if (this.infoValue) this.infoValue = { ...this.infoValue, hostClientId: newHost };
        }
        this.emit('participant:left', entry.payload);
        break;
      }
      case 'room:presence':
        for (const id of entry.payload.returned) this.setStatus(id, 'online');
        for (const id of entry.payload.away) this.setStatus(id, 'away');
        this.emit('presence', entry.payload);
        break;
      case 'playback:start':
      case 'playback:pause':
      case 'playback:seek':
      case 'playback:stop': {
        const { playing, trackId, positionMs, serverTimestamp, startAtServerTime, syncBufferMs } = entry.payload;
        this.playbackValue = { playing, trackId, positionMs, serverTimestamp, startAtServerTime, syncBufferMs };
        this.emit('playback', entry.payload);
        break;
      }
      case 'playback:control': {
        const p = this.members.get(entry.payload.clientId);
        if (p) this.members.set(p.clientId, { ...p, canControl: entry.payload.canControl });
        this.emit('playback:control', entry.payload);
        break;
      }
    }
    this.emit('sequenced', entry);
  }

  private setStatus(clientId: string, status: Participant['status']): void {
    const p = this.members.get(clientId);
    if (p && p.status !== status) this.members.set(clientId, { ...p, status });
  }

  // ---- outbox ------------------------------------------------------------------------------------

  private flushOutbox(): void {
    if (this.sending || !this.live || this.closedReason || this.outboxTimer) return;
    const msg = this.outbox[0];
    if (!msg) return;
    const wait = msg.retryAt - Date.now();
    if (wait > 0) {
      this.outboxTimer = setTimeout(() => {
        this.outboxTimer = undefined;
        this.flushOutbox();
      }, wait);
      return;
    }
    this.sending = true;
    msg.attempts++;
    const epoch = this.host.connEpoch;
    this.host
      .request('room:publish', { roomId: this.id, type: msg.type, data: msg.data as never, clientMsgId: msg.clientMsgId })
      .then(
        (res) => {
          this.removeFromOutbox(msg);
          msg.markSent(res.seq, res.duplicate);
          this.emit('publish', msg);
        },
        (err: unknown) => this.publishFailed(msg, toClientError(err), epoch),
      )
      .finally(() => {
        this.sending = false;
        this.flushOutbox();
      });
  }

  private publishFailed(msg: Message, e: ClientError, epoch: number): void {
    if (msg.status !== 'pending' || this.closedReason) return;
    switch (e.code) {
      case 'DISCONNECTED':
      case 'OFFLINE':
        // The ack may be lost with the connection: the resend after the rejoin reuses the
        // clientMsgId and the server answers with the original seq.
        return;
      case 'TIMEOUT':
        return; // resent at once by the flush that follows, same clientMsgId
      case 'NOT_IN_ROOM':
        if (++msg.refusals <= 3) {
          // The server no longer counts us as a member (evicted while the socket lingered): rejoin first.
          if (epoch === this.host.connEpoch && !this.syncing) void this.sync('resume');
          return;
        }
        break;
      default:
        if (e.retryable && ++msg.refusals <= 20) {
          msg.retryAt = Date.now() + backoffDelay(msg.refusals, this.host.settings.retry, this.host.settings.random);
          return;
        }
    }
    this.removeFromOutbox(msg);
    msg.markFailed(e);
    this.emit('publish', msg);
  }

  private removeFromOutbox(msg: Message): void {
    const i = this.outbox.indexOf(msg);
    if (i >= 0) this.outbox.splice(i, 1);
  }

  private clearTimer(name: 'holeTimer' | 'retryTimer' | 'outboxTimer'): void {
    const t = this[name];
    if (t !== undefined) clearTimeout(t);
    this[name] = undefined;
  }
}

export function toClientError(err: unknown): ClientError {
  if (err instanceof ClientError) return err;
  return new ClientError('INTERNAL_ERROR', err instanceof Error ? err.message : String(err));
}

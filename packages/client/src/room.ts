import type { Participant, PlaybackControlChanged, PlaybackEvent, PlaybackState, RoomHead, RoomInfo, RoomStatePayload } from '@tether/protocol';
import { Emitter, type Listener } from './emitter.js';
import type { RoomHost } from './host.js';
import { ClientError, toClientError } from './errors.js';
import { checkHistoryOptions, readHistory, type HistoryPage } from './history.js';
import { Message, Outbox } from './outbox.js';
import { positionAt, shouldApplySync } from './playback.js';
import { modelFromState, reduceRoom, type RoomModel } from './room-state.js';
import { RoomSync } from './room-sync.js';
import type {
  JoinOptions,
  OutgoingMessage,
  RequestName,
  RequestPayload,
  RequestResult,
  RoomCloseReason,
  RoomEvents,
  RoomState,
  RoomStatus,
  SequencedEntry,
} from './types.js';

export { toClientError } from './errors.js';
export type { RoomHost } from './host.js';

export type { RoomStatus } from './types.js';

/** Listeners that consume the room's stream: attaching the first one starts delivery (RoomSync.listening). */
const STREAM_EVENTS: ReadonlySet<keyof RoomEvents> = new Set<keyof RoomEvents>([
  'state', 'event', 'sequenced', 'participant:joined', 'participant:left', 'presence', 'playback', 'playback:control', 'resumed',
]);

const ROOM_SCOPED: ReadonlySet<RequestName> = new Set<RequestName>([
  'room:leave', 'room:rejoin', 'room:publish', 'room:signal', 'room:catchup', 'sync:report',
  'playback:start', 'playback:pause', 'playback:seek', 'playback:stop', 'playback:grant',
]);

/**
 * One room as the application sees it: local state (participants, playback, seq) and a stream of
 * its sequenced events delivered exactly once, in seq order, across reconnects.
 *
 * The handle is a facade over three parts: the room's state (a pure reducer, room-state.ts), its
 * synchronisation with the server (baseline, reorder, gaps: room-sync.ts) and its publish queue
 * (outbox.ts).
 */
export class Room extends Emitter<RoomEvents> {
  private model: RoomModel | null = null;
  private closedReason: RoomCloseReason | null = null;
  /** The status last announced with a 'status' event. */
  private announced: RoomStatus = 'joining';
  private readonly sync: RoomSync;
  private readonly outbox: Outbox;
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
    const room = this;
    this.sync = new RoomSync(host, {
      id,
      kind,
      joinOptions,
      get closed() {
        return room.closedReason !== null;
      },
      applyState: (state) => (this.model = modelFromState(state)),
      showState: () => this.emit('state', this.state!),
      applyEntry: (entry) => this.apply(entry),
      firstBaseline: () => this.readyResolve(this),
      resumed: (recovered) => this.emit('resumed', { recovered }),
      syncing: () => this.announceStatus(),
      live: () => {
        this.announceStatus();
        if (this.closedReason) return;
        this.host.roomLive(this);
        this.outbox.flush();
      },
      fail: (error) => this.close('error', error),
    });
    this.outbox = new Outbox({
      roomId: id,
      connEpoch: () => host.connEpoch,
      canSend: () => this.sync.live && !this.closedReason,
      rejoin: () => this.sync.rejoin(),
      request: (event, payload) => host.request(event, payload),
      retry: host.settings.retry,
      random: host.settings.random,
      changed: (msg) => this.emit('publish', msg),
    });
  }

  /**
   * Subscribes to a room event. The first listener for the room's stream ('state', 'event',
   * 'sequenced', 'participant:*', 'presence', 'playback', 'playback:control', 'resumed') starts
   * delivery of a freshly joined room, one macrotask later: see "Joining" in docs/CLIENT.md.
   */
  override on<K extends keyof RoomEvents>(event: K, listener: Listener<RoomEvents[K]>): () => void {
    const off = super.on(event, listener);
    if (STREAM_EVENTS.has(event)) this.sync.listening();
    return off;
  }

  // ---- state the application reads -------------------------------------------------------------

  /** Seq of the last event handed to the application (or of the snapshot that replaced them). */
  get seq(): number {
    return this.sync.applied;
  }

  /**
   * The room life `seq` counts in (null before the first state). A room that expired and was
   * created again under the same code has a new incarnation and starts its seq again.
   */
  get incarnation(): string | null {
    return this.sync.incarnation;
  }

  get info(): RoomInfo | null {
    return this.model?.info ?? null;
  }

  get participants(): Participant[] {
    return this.model ? [...this.model.members.values()] : [];
  }

  participant(clientId: string): Participant | undefined {
    return this.model?.members.get(clientId);
  }

  /** This client's participant entry (null for program rooms that list no member for it). */
  get self(): Participant | null {
    const id = this.host.clientId;
    return (id && this.model?.members.get(id)) || null;
  }

  /**
   * Playback state as of the last applied (sequenced) playback event or snapshot; null before the
   * first state. `playback:sync` never changes it. Positions: `currentPosition()`, `positionAt(t)`.
   */
  get playback(): PlaybackState | null {
    return this.model?.playback ?? null;
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
    return this.model ? positionAt(this.model.playback, serverTime) : 0;
  }

  /** The track position now, in server time (`client.serverNow()`): where every player in the room should be. */
  currentPosition(): number {
    return this.positionAt(this.host.serverNow());
  }

  get status(): RoomStatus {
    if (this.closedReason) return 'closed';
    if (!this.sync.hasBaseline) return 'joining';
    if (this.sync.live) return 'live';
    return this.host.connected ? 'syncing' : 'offline';
  }

  get state(): RoomState | null {
    const m = this.model;
    if (!m) return null;
    return { info: m.info, participants: this.participants, playback: m.playback, seq: this.seq, incarnation: m.incarnation, serverTimestamp: m.serverTimestamp };
  }

  /** Messages not yet acked by the server, oldest first. */
  get pending(): OutgoingMessage[] {
    return this.outbox.pending;
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
    // Refused before it is queued: it could never be sent, and it must not hold up the FIFO.
    const unsendable = this.host.frameError?.('room:publish', { roomId: this.id, type, data: msg.data, clientMsgId: msg.clientMsgId });
    if (unsendable) {
      msg.markFailed(unsendable);
      return msg;
    }
    this.outbox.add(msg);
    return msg;
  }

  /** Sends an ephemeral signal to the other members. Not queued: rejects with OFFLINE when not live. */
  async signal(type: string, data: unknown): Promise<void> {
    if (this.closedReason) throw new ClientError('CLOSED');
    if (!this.sync.live) throw new ClientError('OFFLINE', `room ${this.id} is not live`);
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

  /**
   * Earlier events, to fill a page after a reload: the `limit` events up to `before` (default
   * `room.seq`: what came before what the app is shown), oldest first, read from the room's log
   * with room:catchup. The log's retention bounds how far back (CATCHUP_MAX_EVENTS, CATCHUP_TTL_MS):
   * `recovered: false` says the page is not whole. Nothing is emitted or applied; the room's
   * state and stream are untouched. Waits for the first state; rejects with OFFLINE, CLOSED,
   * INVALID_PAYLOAD (bad options), RATE_LIMITED...
   */
  async history(opts: { limit?: number; before?: number } = {}): Promise<HistoryPage> {
    const limit = opts.limit ?? 50;
    checkHistoryOptions(limit, opts.before);
    if (this.closedReason) throw new ClientError('CLOSED', `room ${this.id} is closed`);
    await this.ready();
    const incarnation = this.incarnation;
    return readHistory(
      {
        roomId: this.id,
        incarnation,
        pageLimit: this.host.settings.catchupLimit,
        catchup: (payload) => this.host.request('room:catchup', payload),
      },
      Math.min(opts.before ?? this.seq, this.seq),
      limit,
    );
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
    this.sync.resume();
  }

  onDisconnected(): void {
    this.sync.onDisconnected();
    this.outbox.pause();
    this.announceStatus();
  }

  /** A handshake completed: an offline room is syncing until resume() brings it live. */
  onConnected(): void {
    this.announceStatus();
  }

  /** A sequenced event for this room, live, replayed or from a catch-up page. */
  receive(entry: SequencedEntry): void {
    this.sync.receive(entry);
  }

  /** room:state_snapshot: applied only when this room asked for it (a rejoin in flight). */
  receiveSnapshot(snapshot: RoomStatePayload): void {
    this.sync.receiveSnapshot(snapshot);
  }

  /** room:head: the room's current position (fills a lost broadcast, notices a recreated room). */
  receiveHead(head: RoomHead): void {
    this.sync.receiveHead(head);
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
    if (this.closedReason || !this.sync.live || !this.model) return;
    if (shouldApplySync(this.model.playback, sync)) this.emit('playback:sync', sync);
  }

  /** Closes the handle; idempotent. */
  close(reason: RoomCloseReason, error?: ClientError): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    this.sync.close();
    const failure = error ?? new ClientError('CLOSED', `room ${this.id} closed (${reason})`);
    this.outbox.failAll(failure);
    this.readyReject(failure);
    this.host.roomClosed(this);
    this.announceStatus();
    this.emit('closed', error ? { reason, error } : { reason });
  }

  private announceStatus(): void {
    const status = this.status;
    if (status === this.announced) return;
    this.announced = status;
    this.emit('status', status);
  }

  // ---- state changes (called by the sync machine, in order) ---------------------------------------

  private apply(entry: SequencedEntry): void {
    this.model = reduceRoom(this.model!, entry);
    switch (entry.name) {
      case 'room:event':
        this.emit('event', entry.payload);
        break;
      case 'room:participant:joined':
        this.emit('participant:joined', entry.payload);
        break;
      case 'room:participant:left':
        this.emit('participant:left', entry.payload);
        break;
      case 'room:presence':
        this.emit('presence', entry.payload);
        break;
      case 'playback:start':
      case 'playback:pause':
      case 'playback:seek':
      case 'playback:stop':
        this.emit('playback', entry.payload);
        break;
      case 'playback:control':
        this.emit('playback:control', entry.payload);
        break;
    }
    this.emit('sequenced', entry);
  }
}

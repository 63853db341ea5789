import { io } from 'socket.io-client';
// Runtime values from the protocol: events.ts has only type imports, so the browser bundle stays server-free.
import { NAMESPACE, SEQUENCED_EVENTS } from '@tether/protocol';
import type { Ack, SessionPayload } from '@tether/protocol';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { ClockScheduler, type ClockSettings } from './clock.js';
import { ConnectionLoop, toError, type WireSocket } from './connection.js';
import { Emitter } from './emitter.js';
import { ClientError, toClientError } from './errors.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, frameBytes, sizeError } from './frames.js';
import { IdentityStore, randomId } from './identity.js';
import { Inbox } from './inbox.js';
import { Room, type RoomHost } from './room.js';
import { DEFAULT_DELIVERY_HOLD_MS } from './delivery.js';
import { DEFAULT_HOLE_WAIT_MAX_MS, DEFAULT_HOLE_WAIT_MS } from './hole-wait.js';
import { resolveStorage } from './storage.js';
import type {
  ClientEvents,
  ClockEstimate,
  ClientStatus,
  JoinOptions,
  RequestName,
  RequestPayload,
  RequestResult,
  SequencedEntry,
  TetherClientOptions,
} from './types.js';

export { randomId } from './identity.js';
export type { WireSocket } from './connection.js';

interface Settings {
  holeWaitMs: number;
  holeWaitMaxMs: number;
  deliveryHoldMs: number;
  catchupLimit: number;
  retry: BackoffOptions;
  rejoinAfterEviction: boolean;
  random: () => number;
  reconnect: BackoffOptions;
  shutdownJitterMs: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxPayloadBytes: number;
  /** null: clock sync off. */
  clock: ClockSettings | null;
  now: () => number;
}

function resolveSettings(options: TetherClientOptions): Settings {
  return {
    holeWaitMs: options.holeWaitMs ?? DEFAULT_HOLE_WAIT_MS,
    holeWaitMaxMs: options.holeWaitMaxMs ?? DEFAULT_HOLE_WAIT_MAX_MS,
    deliveryHoldMs: options.deliveryHoldMs ?? DEFAULT_DELIVERY_HOLD_MS,
    catchupLimit: options.catchupLimit ?? 500,
    retry: { baseMs: 200, maxMs: 5000, ...options.retry },
    rejoinAfterEviction: options.rejoinAfterEviction ?? true,
    random: options.random ?? Math.random,
    reconnect: { ...DEFAULT_BACKOFF, ...options.reconnect },
    shutdownJitterMs: options.shutdownJitterMs ?? 500,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    clock:
      options.clockSync === false
        ? null
        : {
            samples: Math.max(1, Math.min(16, Math.round(options.clockSync?.samples ?? 6))),
            intervalMs: Math.max(100, options.clockSync?.intervalMs ?? 10_000),
            window: options.clockSync?.window ?? 10,
            best: options.clockSync?.best ?? 4,
          },
    now: options.now ?? Date.now,
  };
}

/**
 * The Tether client: one connection to namespace /sync, its identity, its reconnect loop, and
 * the rooms it is in. A facade over the parts, each its own state machine: the connection loop
 * (connection.ts), the identity (identity.ts), the inbox (inbox.ts), the clock sync (clock.ts), and
 * one Room per room.
 */
export class TetherClient extends Emitter<ClientEvents> {
  /** The underlying socket.io-client socket (advanced use and tests; do not reconnect it yourself). */
  readonly socket: WireSocket;
  private readonly settings: Settings;
  private readonly identity: IdentityStore;
  private readonly loop: ConnectionLoop;
  private readonly clock: ClockScheduler;
  private readonly inbox: Inbox;
  private readonly roomsById = new Map<string, Room>();
  private readonly pendingLeaves = new Set<string>();
  private readonly host: RoomHost;
  /**
   * The largest message this client sends: maxPayloadBytes, lowered below a message the server
   * closed the connection over (its limit is smaller than configured), so that message is refused
   * here when resent instead of killing every connection it is sent on.
   */
  private payloadLimit: number;
  /** Estimated sizes of the requests awaiting their ack (a size close names no message). */
  private readonly inflight = new Set<{ bytes: number }>();

  constructor(options: TetherClientOptions) {
    super();
    const settings = (this.settings = resolveSettings(options));
    this.payloadLimit = settings.maxPayloadBytes;
    this.identity = new IdentityStore(resolveStorage(options.storage), options.storageKey ?? 'tether:', (err) =>
      this.emit('error', toError(err, 'storage.set failed')),
    );
    const userQuery = options.socketOptions?.['query'];
    const baseQuery = userQuery && typeof userQuery === 'object' ? { ...(userQuery as Record<string, string>) } : {};
    this.socket = io(`${options.url.replace(/\/+$/, '')}${NAMESPACE}`, {
      transports: options.transports ?? ['websocket'],
      ...(options.path ? { path: options.path } : {}),
      ...options.socketOptions,
      timeout: settings.connectTimeoutMs,
      forceNew: true,
      autoConnect: false,
      reconnection: false,
      // Set again before every attempt: clientId for the balancer's affinity hash.
      query: { ...baseQuery },
      // Evaluated on every connection attempt: a fresh token and the current identity each time.
      auth: (cb: (data: object) => void) => this.loop.provideAuth(cb),
    });
    this.loop = new ConnectionLoop({
      socket: this.socket,
      identity: this.identity,
      getToken: options.getToken,
      baseQuery,
      settings,
      status: (s) => this.emit('status', s),
      session: (s) => this.emit('session', s),
      authError: (e) => this.emit('auth_error', e),
      replaced: (p) => this.emit('replaced', p),
      identityReset: (r) => this.emit('identity_reset', r),
      shutdown: (n) => this.emit('shutdown', n),
      error: (e) => this.emit('error', e),
      up: (session) => {
        for (const room of this.roomsById.values()) room.onConnected();
        void this.resumeRooms(session, this.loop.epoch);
        this.inbox.flush();
      },
      down: ({ reason, wasUp, tooLarge }) => {
        this.clock.stop();
        for (const room of this.roomsById.values()) room.onDisconnected();
        if (tooLarge) {
          const culprit = Math.max(0, ...[...this.inflight].map((r) => r.bytes));
          if (culprit > 0) this.payloadLimit = Math.min(this.payloadLimit, culprit - 1);
          this.emit('error', new ClientError('PAYLOAD_TOO_LARGE', `the server closed the connection over a message's size (${reason}); messages over ${this.payloadLimit} bytes are now refused`));
        }
        if (wasUp) this.emit('disconnected', tooLarge ? { reason, code: 'PAYLOAD_TOO_LARGE' } : { reason });
      },
      stopped: (error) => {
        // A join that never got its first state cannot complete now.
        for (const room of [...this.roomsById.values()]) if (room.status === 'joining') room.close('error', error);
      },
      closing: () => {
        this.clock.stop();
        this.inbox.close();
        for (const room of [...this.roomsById.values()]) room.close('client_closed');
      },
    });
    this.clock = new ClockScheduler({
      settings: settings.clock,
      now: settings.now,
      request: (event, payload) => this.request(event, payload),
      epoch: () => this.loop.epoch,
      connected: () => this.loop.connected,
      closed: () => this.loop.isClosed,
      rooms: () => this.rooms,
      onEstimate: (e) => this.emit('clock', e),
      onError: (e) => this.emit('error', e),
    });
    this.inbox = new Inbox({
      request: (event, payload) => this.request(event, payload),
      connected: () => this.loop.connected,
      listening: () => this.listenerCount('message') > 0,
      deliver: (msg) => this.emitAndWait('message', msg),
    });
    this.host = this.makeHost();
    this.listen();
  }

  // ---- public API ----------------------------------------------------------------------------------

  get status(): ClientStatus {
    return this.loop.status;
  }

  /** The persistent clientId (null until the identity was loaded by the first connect). */
  get clientId(): string | null {
    return this.identity.current?.clientId ?? null;
  }

  /** The last handshake's session (nodeId, epoch, programRooms...). */
  get session(): SessionPayload | null {
    return this.loop.session;
  }

  get connected(): boolean {
    return this.loop.connected;
  }

  get rooms(): Room[] {
    return [...this.roomsById.values()];
  }

  room(roomId: string): Room | undefined {
    return this.roomsById.get(roomId);
  }

  /**
   * The server's clock now (ms since the epoch): the local clock plus the clock-sync offset. The
   * time base of `startAtServerTime`, `serverTimestamp` and `room.positionAt()`. Before the first
   * sample (or with clockSync: false) it is the local clock.
   */
  serverNow(): number {
    return this.clock.serverNow();
  }

  /** The local clock time at which the server's clock reads `serverTime` (to schedule a command). */
  localTimeOf(serverTime: number): number {
    return this.clock.localTimeOf(serverTime);
  }

  /** Server clock minus local clock, ms (0 before the first clock-sync sample). */
  get clockOffset(): number {
    return this.clock.offsetMs;
  }

  /** Estimated round trip to the server, ms (null before the first clock-sync sample). */
  get rttMs(): number | null {
    return this.clock.rttMs;
  }

  /** Whether the current estimate rests on at least one sample. */
  get clockSynced(): boolean {
    return this.clock.synced;
  }

  /**
   * Runs a clock-sync burst now (normally automatic after a room is joined or resumed) and
   * resolves when it is done; rejects with OFFLINE when not connected.
   */
  async syncClock(): Promise<ClockEstimate | null> {
    if (!this.loop.connected) throw new ClientError('OFFLINE');
    await this.clock.startBurst(true);
    return this.clock.estimate();
  }

  /**
   * Starts (or, after auth_error / replaced, restarts) the connection loop. Resolves with the
   * first session; rejects if the loop stops before one (auth_error, replaced, close).
   */
  connect(): Promise<SessionPayload> {
    return this.loop.connect();
  }

  /**
   * Joins a room by code and resolves with its handle once the first state is in. Connects first
   * if needed; survives reconnects while pending. Joining a room already joined returns its handle.
   */
  async join(code: string, opts: JoinOptions = {}): Promise<Room> {
    if (this.loop.isClosed) throw new ClientError('CLOSED', 'client is closed');
    const roomId = code.trim().toUpperCase();
    const existing = this.roomsById.get(roomId);
    if (existing) return existing.ready();
    this.pendingLeaves.delete(roomId);
    const room = new Room(this.host, roomId, 'room', opts);
    this.roomsById.set(roomId, room);
    if (!this.loop.isRunning) this.connect().catch(() => undefined);
    else if (this.loop.connected) room.resume();
    return room.ready();
  }

  /**
   * A raw request of the wire contract, answered by its ack data or rejected with a ClientError
   * (OFFLINE when not connected, TIMEOUT, DISCONNECTED, or the server's code).
   */
  request<E extends RequestName>(event: E, payload: RequestPayload<E>, timeoutMs = this.settings.requestTimeoutMs): Promise<RequestResult<E>> {
    if (!this.loop.connected || !this.socket.connected) return Promise.reject(new ClientError('OFFLINE'));
    let sized: { bytes: number };
    try {
      sized = { bytes: frameBytes(event, payload) };
    } catch (err) {
      return Promise.reject(toClientError(err));
    }
    // Over the limit the server would close the connection (and every request on it) for this one.
    const refused = sizeError(event, sized.bytes, this.payloadLimit);
    if (refused) return Promise.reject(refused);
    this.inflight.add(sized);
    return new Promise<RequestResult<E>>((resolve, reject) => {
      // Typed loosely: socket.io's timeout() rewrites ack signatures in a way the contract's
      // Ack<T> callbacks do not survive.
      const emitter = this.socket.timeout(timeoutMs) as unknown as {
        emit(ev: string, p: unknown, cb: (err: Error | null, res: Ack<RequestResult<E>>) => void): void;
      };
      emitter.emit(event, payload, (err, res) => {
        if (err) return reject(new ClientError(this.socket.connected ? 'TIMEOUT' : 'DISCONNECTED', `${event}: ${err.message}`));
        if (!res || typeof res !== 'object') return reject(new ClientError('INTERNAL_ERROR', `${event}: malformed ack`));
        if (res.ok) resolve(res.data);
        else reject(ClientError.fromBody(res.error));
      });
    }).finally(() => this.inflight.delete(sized));
  }

  /**
   * Closes for good: rooms close (pending publishes fail with CLOSED) and the socket disconnects,
   * which the server treats as leaving every room at once. Idempotent.
   */
  close(): void {
    if (this.loop.isClosed) return;
    this.loop.close();
    this.removeAllListeners();
  }

  // ---- rooms -------------------------------------------------------------------------------------

  private listen(): void {
    const s = this.socket;
    for (const name of SEQUENCED_EVENTS) {
      (s.on as (ev: string, fn: (p: { roomId: string; seq: number }) => void) => void)(name, (payload) => {
        if (!payload || typeof payload.seq !== 'number') return;
        this.roomsById.get(payload.roomId)?.receive({ name, seq: payload.seq, payload } as SequencedEntry);
      });
    }
    s.on('room:state_snapshot', (snap) => this.roomsById.get(snap.room?.id)?.receiveSnapshot(snap));
    s.on('room:head', (head) => head && this.roomsById.get(head.roomId)?.receiveHead(head));
    s.on('room:signal', (sig) => this.roomsById.get(sig.roomId)?.receiveSignal(sig));
    s.on('playback:sync', (sync) => this.roomsById.get(sync.roomId)?.receivePlaybackSync(sync));
    s.on('inbox:message', (msg) => this.inbox.receive(msg));
  }

  private async resumeRooms(session: SessionPayload, epoch: number): Promise<void> {
    // Leaves first: the server refuses to join another code room while it still counts us in one.
    await Promise.all(
      [...this.pendingLeaves].map(async (roomId) => {
        try {
          await this.request('room:leave', { roomId });
          this.pendingLeaves.delete(roomId);
        } catch (err) {
          const code = toClientError(err).code;
          if (code === 'NOT_IN_ROOM' || code === 'ROOM_NOT_FOUND') this.pendingLeaves.delete(roomId);
        }
      }),
    );
    if (epoch !== this.loop.epoch) return;
    // Program rooms come from the JWT presented on this connect: new ones appear, revoked ones close.
    const granted = new Set(session.programRooms ?? []);
    for (const room of [...this.roomsById.values()]) {
      if (room.kind === 'program' && !granted.has(room.id)) room.close('revoked', new ClientError('UNAUTHORIZED', 'program room no longer in the token'));
    }
    for (const roomId of granted) {
      if (this.roomsById.has(roomId)) continue;
      const room = new Room(this.host, roomId, 'program');
      this.roomsById.set(roomId, room);
      this.emit('room', room);
    }
    for (const room of [...this.roomsById.values()]) room.resume();
  }

  private makeHost(): RoomHost {
    const client = this;
    return {
      get connEpoch() {
        return client.loop.epoch;
      },
      get connected() {
        return client.loop.connected;
      },
      get clientId() {
        return client.clientId;
      },
      settings: this.settings,
      serverOffers: (feature) => this.loop.session?.features?.includes(feature) ?? false,
      request: (event, payload) => this.request(event, payload),
      frameError: (event, payload) => {
        try {
          return sizeError(event, frameBytes(event, payload), this.payloadLimit);
        } catch (err) {
          return toClientError(err);
        }
      },
      newMessageId: randomId,
      roomClosed: (room) => {
        if (this.roomsById.get(room.id) === room) this.roomsById.delete(room.id);
        if (this.roomsById.size === 0) this.clock.stop();
      },
      serverNow: () => this.serverNow(),
      roomLive: (room) => this.clock.onRoomLive(room),
      queueLeave: (roomId) => {
        if (!this.loop.isClosed) this.pendingLeaves.add(roomId);
      },
    };
  }
}

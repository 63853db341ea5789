import { io, type Socket } from 'socket.io-client';
// Runtime values from the protocol: events.ts has only type imports, so the browser bundle stays server-free.
import { NAMESPACE, SEQUENCED_EVENTS } from '../protocol/events.js';
import type {
  Ack,
  ClientToServerEvents,
  InboxMessage,
  ServerToClientEvents,
  SessionPayload,
} from '../protocol/events.js';
import { backoffDelay, DEFAULT_BACKOFF, shutdownDelay, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { ClientError, connectErrorCode, isRetryable } from './errors.js';
import { ClockSync } from './playback.js';
import { Room, toClientError, type RoomHost } from './room.js';
import { identityKeys, resolveStorage, type StorageAdapter } from './storage.js';
import type {
  ClientEvents,
  ClockEstimate,
  ClientStatus,
  JoinOptions,
  OfflineReason,
  RequestName,
  RequestPayload,
  RequestResult,
  SequencedEntry,
  TetherClientOptions,
} from './types.js';

export type WireSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
type Timer = ReturnType<typeof setTimeout>;

const INBOX_SEEN_MAX = 2000;
const INBOX_ACK_BATCH = 500;

interface Settings {
  holeWaitMs: number;
  catchupLimit: number;
  retry: BackoffOptions;
  rejoinAfterEviction: boolean;
  random: () => number;
  reconnect: BackoffOptions;
  shutdownJitterMs: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** null: clock sync off. */
  clock: { samples: number; intervalMs: number; window: number; best: number } | null;
  now: () => number;
}

/** A v4 UUID: crypto.randomUUID where it exists (Node, secure browser contexts), else built from getRandomValues. */
export function randomId(): string {
  const c = globalThis.crypto;
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The Tether client: one connection to namespace /sync, its identity, its reconnect loop, and
 * the rooms it is in.
 *
 * Reconnection is the SDK's, not socket.io-client's (`reconnection: false`): socket.io-client
 * reconnects at once after a transport close, which would defeat a server's `server:shutdown`
 * delay, and never retries a handshake the server refused, which would strand a client on a
 * transient INTERNAL_ERROR. Here every failure goes through one decision: auth failures stop and
 * surface `auth_error`, SESSION_INVALID gets one retry under a new identity, retryable codes and
 * network failures back off with full jitter, a takeover stops for good.
 */
export class TetherClient extends Emitter<ClientEvents> {
  /** The underlying socket.io-client socket (advanced use and tests; do not reconnect it yourself). */
  readonly socket: WireSocket;
  private readonly settings: Settings;
  private readonly getToken: TetherClientOptions['getToken'];
  private readonly storage: StorageAdapter;
  private readonly keys: { clientId: string; sessionToken: string };
  private identity: { clientId: string; sessionToken?: string } | null = null;
  private statusValue: ClientStatus = { state: 'offline', reason: 'idle' };
  private sessionValue: SessionPayload | null = null;
  private running = false;
  private closed = false;
  private sessionUp = false;
  private epoch = 0;
  private attemptId = 0;
  private failures = 0;
  private retryTimer: Timer | undefined;
  private connectTimer: Timer | undefined;
  private shutdownDelayMs: number | null = null;
  private identityReset = false;
  private readonly roomsById = new Map<string, Room>();
  private readonly pendingLeaves = new Set<string>();
  private readonly inboxSeen = new Set<string>();
  private inboxAcks: string[] = [];
  private inboxTimer: Timer | undefined;
  private waiters: { resolve(s: SessionPayload): void; reject(e: ClientError): void }[] = [];
  private readonly host: RoomHost;
  /** Extra query parameters of every engine.io request (socketOptions.query), plus clientId. */
  private readonly baseQuery: Record<string, string>;
  private clock: ClockSync;
  /** Connection epoch whose initial ping burst completed (rooms going live after it only report). */
  private clockEpoch = -1;
  /** The burst of the current connection, while it runs. */
  private clockBurst: { epoch: number; done: Promise<void> } | null = null;
  private clockTimer: Timer | undefined;
  /** A back-off pause inside a burst (RATE_LIMITED): cleared and resolved by stopClock(). */
  private clockPause: { timer: Timer; resolve(): void } | undefined;

  constructor(options: TetherClientOptions) {
    super();
    this.settings = {
      holeWaitMs: options.holeWaitMs ?? 300,
      catchupLimit: options.catchupLimit ?? 500,
      retry: { baseMs: 200, maxMs: 5000, ...options.retry },
      rejoinAfterEviction: options.rejoinAfterEviction ?? true,
      random: options.random ?? Math.random,
      reconnect: { ...DEFAULT_BACKOFF, ...options.reconnect },
      shutdownJitterMs: options.shutdownJitterMs ?? 500,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
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
    this.clock = this.newClock();
    this.getToken = options.getToken;
    this.storage = resolveStorage(options.storage);
    this.keys = identityKeys(options.storageKey ?? 'tether:');
    const userQuery = options.socketOptions?.['query'];
    this.baseQuery = userQuery && typeof userQuery === 'object' ? { ...(userQuery as Record<string, string>) } : {};
    this.socket = io(`${options.url.replace(/\/+$/, '')}${NAMESPACE}`, {
      transports: options.transports ?? ['websocket'],
      ...(options.path ? { path: options.path } : {}),
      ...options.socketOptions,
      timeout: this.settings.connectTimeoutMs,
      forceNew: true,
      autoConnect: false,
      reconnection: false,
      // Set again before every attempt (attempt()): clientId for the balancer's affinity hash.
      query: { ...this.baseQuery },
      // Evaluated on every connection attempt: a fresh token and the current identity each time.
      auth: (cb: (data: object) => void) => this.provideAuth(cb),
    });
    this.host = this.makeHost();
    this.listen();
  }

  // ---- public API ----------------------------------------------------------------------------------

  get status(): ClientStatus {
    return this.statusValue;
  }

  /** The persistent clientId (null until the identity was loaded by the first connect). */
  get clientId(): string | null {
    return this.identity?.clientId ?? null;
  }

  /** The last handshake's session (nodeId, epoch, programRooms...). */
  get session(): SessionPayload | null {
    return this.sessionValue;
  }

  get connected(): boolean {
    return this.sessionUp;
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
    return this.clock.serverNow(this.settings.now());
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
    return this.clock.sampleCount > 0;
  }

  /**
   * Runs a clock-sync burst now (normally automatic after a room is joined or resumed) and
   * resolves when it is done; rejects with OFFLINE when not connected.
   */
  async syncClock(): Promise<ClockEstimate | null> {
    if (!this.sessionUp) throw new ClientError('OFFLINE');
    await this.startBurst(true);
    return this.estimate();
  }

  /**
   * Starts (or, after auth_error / replaced, restarts) the connection loop. Resolves with the
   * first session; rejects if the loop stops before one (auth_error, replaced, close).
   */
  connect(): Promise<SessionPayload> {
    if (this.closed) return Promise.reject(new ClientError('CLOSED', 'client is closed'));
    if (this.sessionUp && this.sessionValue) return Promise.resolve(this.sessionValue);
    const p = new Promise<SessionPayload>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.running) {
      this.running = true;
      this.failures = 0;
      this.identityReset = false;
      void this.attempt();
    }
    return p;
  }

  /**
   * Joins a room by code and resolves with its handle once the first state is in. Connects first
   * if needed; survives reconnects while pending. Joining a room already joined returns its handle.
   */
  async join(code: string, opts: JoinOptions = {}): Promise<Room> {
    if (this.closed) throw new ClientError('CLOSED', 'client is closed');
    const roomId = code.trim().toUpperCase();
    const existing = this.roomsById.get(roomId);
    if (existing) return existing.ready();
    this.pendingLeaves.delete(roomId);
    const room = new Room(this.host, roomId, 'room', opts);
    this.roomsById.set(roomId, room);
    if (!this.running) this.connect().catch(() => undefined);
    else if (this.sessionUp) room.resume();
    return room.ready();
  }

  /**
   * A raw request of the wire contract, answered by its ack data or rejected with a ClientError
   * (OFFLINE when not connected, TIMEOUT, DISCONNECTED, or the server's code).
   */
  request<E extends RequestName>(event: E, payload: RequestPayload<E>, timeoutMs = this.settings.requestTimeoutMs): Promise<RequestResult<E>> {
    if (!this.sessionUp || !this.socket.connected) return Promise.reject(new ClientError('OFFLINE'));
    return new Promise((resolve, reject) => {
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
    });
  }

  /**
   * Closes for good: rooms close (pending publishes fail with CLOSED) and the socket disconnects,
   * which the server treats as leaving every room at once. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    this.clearTimers();
    this.stopClock();
    for (const room of [...this.roomsById.values()]) room.close('client_closed');
    this.socket.disconnect();
    this.rejectWaiters(new ClientError('CLOSED', 'client closed'));
    this.setStatus({ state: 'offline', reason: 'closed' });
    this.removeAllListeners();
  }

  // ---- connection loop ---------------------------------------------------------------------------

  private async attempt(): Promise<void> {
    this.clearTimers();
    if (!this.running) return;
    const id = ++this.attemptId;
    if (this.statusValue.state !== 'reconnecting') this.setStatus({ state: 'reconnecting', attempt: this.failures + 1, delayMs: 0 });
    try {
      await this.loadIdentity();
    } catch (err) {
      this.emit('error', toError(err));
      this.retry();
      return;
    }
    if (id !== this.attemptId || !this.running) return;
    // socket.io-client has no timeout for the CONNECT packet (a hung handshake would hang forever).
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      if (id !== this.attemptId || this.sessionUp) return;
      this.emit('error', new ClientError('TIMEOUT', 'connection attempt timed out'));
      this.abortAttempt();
      this.retry();
    }, this.settings.connectTimeoutMs);
    this.applyQuery();
    this.socket.connect();
  }

  /**
   * `?clientId=` on every engine.io request of the next connection: nginx hashes on
   * `$arg_clientId`, so a client's polling requests stay on one worker and clients spread evenly
   * (an address hash piles a whole NAT onto one worker). Read from the Manager's options when
   * socket.io-client opens a new engine, i.e. at each connect.
   */
  private applyQuery(): void {
    const clientId = this.identity?.clientId;
    this.socket.io.opts.query = clientId ? { ...this.baseQuery, clientId } : { ...this.baseQuery };
  }

  private provideAuth(cb: (data: object) => void): void {
    const id = this.attemptId;
    (async () => {
      const token = this.getToken ? await this.getToken() : undefined;
      const identity = this.identity!;
      return {
        clientId: identity.clientId,
        ...(identity.sessionToken ? { sessionToken: identity.sessionToken } : {}),
        ...(token ? { token } : {}),
      };
    })().then(
      (auth) => {
        if (id === this.attemptId && this.running) cb(auth);
      },
      (err: unknown) => {
        if (id !== this.attemptId || !this.running) return;
        this.emit('error', toError(err, 'getToken failed'));
        this.abortAttempt();
        this.retry();
      },
    );
  }

  /** Schedules the next attempt: after `delayMs` when given (shutdown notice), else backoff with full jitter. */
  private retry(delayMs?: number): void {
    if (!this.running) return;
    this.clearTimers();
    this.failures++;
    const delay = delayMs ?? backoffDelay(this.failures, this.settings.reconnect, this.settings.random);
    this.setStatus({ state: 'reconnecting', attempt: this.failures, delayMs: delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attempt();
    }, delay);
  }

  /** Ends the current attempt without triggering the disconnect handler's own retry. */
  private abortAttempt(): void {
    this.attemptId++;
    this.socket.disconnect();
  }

  /** Stops reconnecting (auth failure, takeover, fatal refusal); connect() may start again. */
  private stop(reason: OfflineReason, error: ClientError): void {
    this.running = false;
    this.clearTimers();
    this.attemptId++;
    if (this.socket.active || this.socket.connected) this.socket.disconnect();
    this.setStatus({ state: 'offline', reason });
    this.rejectWaiters(error);
    // A join that never got its first state cannot complete now.
    for (const room of [...this.roomsById.values()]) if (room.status === 'joining') room.close('error', error);
  }

  private listen(): void {
    const s = this.socket;
    s.on('session', (session) => this.onSession(session));
    s.on('connect_error', (err) => this.onConnectError(err));
    s.on('disconnect', (reason) => this.onDisconnect(reason));
    s.on('session:replaced', (p) => {
      this.emit('replaced', p);
      this.stop('replaced', new ClientError('SESSION_REPLACED'));
    });
    s.on('server:shutdown', (notice) => {
      const delayMs = shutdownDelay(notice.reconnectAfterMs, this.settings.shutdownJitterMs, this.settings.random);
      this.shutdownDelayMs = delayMs;
      this.emit('shutdown', { ...notice, delayMs });
    });
    for (const name of SEQUENCED_EVENTS) {
      (s.on as (ev: string, fn: (p: { roomId: string; seq: number }) => void) => void)(name, (payload) => {
        if (!payload || typeof payload.seq !== 'number') return;
        this.roomsById.get(payload.roomId)?.receive({ name, seq: payload.seq, payload } as SequencedEntry);
      });
    }
    s.on('room:state_snapshot', (snap) => this.roomsById.get(snap.room?.id)?.receiveSnapshot(snap));
    s.on('room:signal', (sig) => this.roomsById.get(sig.roomId)?.receiveSignal(sig));
    s.on('playback:sync', (sync) => this.roomsById.get(sync.roomId)?.receivePlaybackSync(sync));
    s.on('inbox:message', (msg) => this.onInbox(msg));
  }

  private onSession(session: SessionPayload): void {
    if (!this.running) return;
    this.clearTimers();
    this.failures = 0;
    this.identityReset = false;
    this.shutdownDelayMs = null;
    this.sessionValue = session;
    const identity = this.identity!;
    if (session.clientId !== identity.clientId) {
      identity.clientId = session.clientId;
      this.persist(this.keys.clientId, session.clientId);
      this.applyQuery();
    }
    if (session.sessionToken) {
      identity.sessionToken = session.sessionToken;
      this.persist(this.keys.sessionToken, session.sessionToken);
    }
    this.epoch++;
    this.sessionUp = true;
    this.setStatus({ state: 'connected', nodeId: session.nodeId });
    this.emit('session', session);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(session);
    void this.resumeRooms(session, this.epoch);
    this.flushInboxAcks();
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
    if (epoch !== this.epoch) return;
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

  private onConnectError(err: Error): void {
    if (!this.running) return;
    this.clearTimers();
    const code = connectErrorCode(err);
    if (code === 'INVALID_TOKEN' || code === 'UNAUTHORIZED') {
      const e = new ClientError(code, err.message);
      this.stop('auth_error', e);
      this.emit('auth_error', e);
      return;
    }
    if (code === 'SESSION_INVALID') {
      if (this.identityReset) {
        this.stop('fatal', new ClientError(code, err.message));
        return;
      }
      this.identityReset = true;
      void this.resetIdentity().then(
        () => this.running && void this.attempt(),
        (e: unknown) => {
          this.emit('error', toError(e));
          this.retry();
        },
      );
      return;
    }
    if (code && !isRetryable(code)) {
      const e = new ClientError(code, err.message);
      this.emit('error', e);
      this.stop('fatal', e);
      return;
    }
    // Network failure (no code) or a retryable refusal (INTERNAL_ERROR, RATE_LIMITED...).
    this.retry();
  }

  private onDisconnect(reason: string): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.sessionUp = false;
    this.epoch++;
    this.stopClock();
    for (const room of this.roomsById.values()) room.onDisconnected();
    // 'io client disconnect' is ours (close, stop, abort): whoever did it decides what comes next.
    if (!this.running || reason === 'io client disconnect') return;
    const delay = this.shutdownDelayMs ?? undefined;
    this.shutdownDelayMs = null;
    this.retry(delay);
  }

  // ---- identity ----------------------------------------------------------------------------------

  private async loadIdentity(): Promise<void> {
    if (this.identity) return;
    const clientId = await this.storage.get(this.keys.clientId);
    const sessionToken = await this.storage.get(this.keys.sessionToken);
    if (clientId && /^[A-Za-z0-9_-]{8,64}$/.test(clientId)) {
      this.identity = { clientId, ...(sessionToken ? { sessionToken } : {}) };
      return;
    }
    this.identity = { clientId: randomId() };
    await this.storage.remove(this.keys.sessionToken);
    await this.storage.set(this.keys.clientId, this.identity.clientId);
  }

  private async resetIdentity(): Promise<void> {
    const previousClientId = this.identity?.clientId ?? '';
    this.identity = { clientId: randomId() };
    this.applyQuery();
    await this.storage.remove(this.keys.sessionToken);
    await this.storage.set(this.keys.clientId, this.identity.clientId);
    this.emit('identity_reset', { previousClientId, clientId: this.identity.clientId });
  }

  private persist(key: string, value: string): void {
    Promise.resolve()
      .then(() => this.storage.set(key, value))
      .catch((err: unknown) => this.emit('error', toError(err, 'storage.set failed')));
  }

  // ---- inbox -------------------------------------------------------------------------------------

  /**
   * At-least-once from the server, once to the app: ids already handled are only acked again (the
   * previous ack may have been lost). Acked after the app's listeners finished; with no listener
   * the message stays on the server for a later connection.
   */
  private onInbox(msg: InboxMessage): void {
    if (!msg || typeof msg.id !== 'string') return;
    if (this.inboxSeen.has(msg.id)) {
      this.queueInboxAck(msg.id);
      return;
    }
    if (this.listenerCount('message') === 0) return;
    this.inboxSeen.add(msg.id);
    if (this.inboxSeen.size > INBOX_SEEN_MAX) this.inboxSeen.delete(this.inboxSeen.values().next().value!);
    void this.emitAndWait('message', msg).then((ok) => {
      if (ok) this.queueInboxAck(msg.id);
      else this.inboxSeen.delete(msg.id); // let a redelivery try again
    });
  }

  private queueInboxAck(id: string): void {
    this.inboxAcks.push(id);
    this.inboxTimer ??= setTimeout(() => {
      this.inboxTimer = undefined;
      this.flushInboxAcks();
    }, 0);
  }

  private flushInboxAcks(): void {
    if (!this.sessionUp || this.inboxAcks.length === 0) return;
    const ids = [...new Set(this.inboxAcks)];
    this.inboxAcks = [];
    for (let i = 0; i < ids.length; i += INBOX_ACK_BATCH) {
      const batch = ids.slice(i, i + INBOX_ACK_BATCH);
      this.request('inbox:ack', { ids: batch }).catch((err: unknown) => {
        // Lost with the connection: ack on the next one. A timeout (or a server without an inbox)
        // is left alone: the server redelivers what it still holds, and redeliveries are deduped.
        if (toClientError(err).code === 'DISCONNECTED' || toClientError(err).code === 'OFFLINE') this.inboxAcks.push(...batch);
      });
    }
  }

  // ---- clock sync --------------------------------------------------------------------------------

  private newClock(): ClockSync {
    const c = this.settings.clock;
    return new ClockSync(c ? { window: c.window, best: c.best } : {});
  }

  private estimate(): ClockEstimate | null {
    const rttMs = this.clock.rttMs;
    return rttMs === null ? null : { offsetMs: this.clock.offsetMs, rttMs, samples: this.clock.sampleCount };
  }

  /**
   * A room reached its baseline on this connection. The first one starts the connection's ping
   * burst, which reports to every live room when done; a room going live after that reports the
   * current estimate at once.
   */
  private onRoomLive(room: Room): void {
    if (!this.settings.clock || !this.sessionUp) return;
    if (this.clockEpoch !== this.epoch) {
      void this.startBurst(false);
      return;
    }
    void this.report([room]);
    // The re-sync stops when the last room closes; a room joined later restarts it.
    this.scheduleClock(this.epoch);
  }

  /**
   * The initial burst of a connection: `samples` sequential pings into a fresh ClockSync (the new
   * path's RTT is what counts; the previous connection's estimate stays in use until it is done),
   * then reports, then the periodic re-sync. `force` runs a new burst even if this connection had one.
   */
  private startBurst(force: boolean): Promise<void> {
    const epoch = this.epoch;
    if (this.clockBurst?.epoch === epoch) return this.clockBurst.done;
    if (!force && this.clockEpoch === epoch) return Promise.resolve();
    const cfg = this.settings.clock ?? { samples: 6, intervalMs: 10_000, window: 10, best: 4 };
    const burst = {
      epoch,
      done: (async () => {
        const fresh = this.newClock();
        for (let i = 0; i < cfg.samples && epoch === this.epoch; i++) {
          if (!(await this.ping(fresh, epoch))) break;
        }
        if (epoch !== this.epoch || this.closed) return;
        if (fresh.sampleCount > 0) this.clock = fresh;
        this.clockEpoch = epoch;
        await this.clockRound(epoch);
      })().finally(() => {
        if (this.clockBurst === burst) this.clockBurst = null;
      }),
    };
    this.clockBurst = burst;
    return burst.done;
  }

  /**
   * One sync:ping into `clock`; false when the burst should end (connection gone, timeout).
   * RATE_LIMITED (another burst, many room reports) waits a little and counts as done.
   */
  private async ping(clock: ClockSync, epoch: number): Promise<boolean> {
    const t0 = this.settings.now();
    try {
      const pong = await this.request('sync:ping', { clientTimestamp: t0 });
      if (epoch !== this.epoch) return false;
      clock.addPong(pong, this.settings.now());
      return true;
    } catch (err) {
      const e = toClientError(err);
      if (epoch !== this.epoch || this.closed) return false;
      if (e.code === 'RATE_LIMITED') {
        await new Promise<void>((resolve) => {
          this.clockPause = {
            resolve,
            timer: setTimeout(() => {
              this.clockPause = undefined;
              resolve();
            }, 200),
          };
        });
        return epoch === this.epoch && !this.closed;
      }
      if (e.code !== 'OFFLINE' && e.code !== 'DISCONNECTED') this.emit('error', e);
      return false;
    }
  }

  /** Announces the estimate, reports it to every live room, and schedules the next re-sync. */
  private async clockRound(epoch: number): Promise<void> {
    const estimate = this.estimate();
    if (estimate) this.emit('clock', estimate);
    await this.report(this.rooms.filter((r) => r.status === 'live'));
    if (epoch === this.epoch && !this.closed) this.scheduleClock(epoch);
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
          this.emit('error', toClientError(err));
        }
      }
    }
  }

  /** Every `intervalMs` while connected with a room: one more ping, then a round. */
  private scheduleClock(epoch: number): void {
    const cfg = this.settings.clock;
    if (!cfg || this.clockTimer || this.roomsById.size === 0) return;
    this.clockTimer = setTimeout(() => {
      this.clockTimer = undefined;
      if (epoch !== this.epoch || this.closed || this.roomsById.size === 0) return;
      void (async () => {
        await this.ping(this.clock, epoch);
        // A failed ping (timeout) still reports the estimate and keeps the cadence.
        if (epoch === this.epoch && !this.closed) await this.clockRound(epoch);
      })();
    }, cfg.intervalMs);
  }

  private stopClock(): void {
    if (this.clockTimer) clearTimeout(this.clockTimer);
    this.clockTimer = undefined;
    const pause = this.clockPause;
    this.clockPause = undefined;
    if (pause) {
      clearTimeout(pause.timer);
      pause.resolve();
    }
  }

  // ---- plumbing ------------------------------------------------------------------------------------

  private makeHost(): RoomHost {
    const client = this;
    return {
      get connEpoch() {
        return client.epoch;
      },
      get connected() {
        return client.sessionUp;
      },
      get clientId() {
        return client.identity?.clientId ?? null;
      },
      settings: this.settings,
      request: (event, payload) => this.request(event, payload),
      newMessageId: randomId,
      roomClosed: (room) => {
        if (this.roomsById.get(room.id) === room) this.roomsById.delete(room.id);
        if (this.roomsById.size === 0) this.stopClock();
      },
      serverNow: () => this.serverNow(),
      roomLive: (room) => this.onRoomLive(room),
      queueLeave: (roomId) => {
        if (!this.closed) this.pendingLeaves.add(roomId);
      },
    };
  }

  private setStatus(status: ClientStatus): void {
    this.statusValue = status;
    this.emit('status', status);
  }

  private rejectWaiters(err: ClientError): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.retryTimer = undefined;
    this.connectTimer = undefined;
  }
}

function toError(err: unknown, context?: string): Error {
  if (err instanceof Error) return err;
  return new Error(context ? `${context}: ${String(err)}` : String(err));
}

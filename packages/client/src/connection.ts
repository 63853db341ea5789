import type { Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents, SessionPayload, ShutdownNotice } from '@tether/protocol';
import { backoffDelay, shutdownDelay, type BackoffOptions } from './backoff.js';
import { ClientError, connectErrorCode, isRetryable } from './errors.js';
import { closedForSize } from './frames.js';
import type { IdentityStore } from './identity.js';
import type { ClientStatus, OfflineReason, TetherClientOptions } from './types.js';

export type WireSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
type Timer = ReturnType<typeof setTimeout>;

export interface ConnectionSettings {
  reconnect: BackoffOptions;
  random: () => number;
  shutdownJitterMs: number;
  connectTimeoutMs: number;
}

export interface ConnectionDeps {
  socket: WireSocket;
  identity: IdentityStore;
  getToken: TetherClientOptions['getToken'];
  /** Extra query parameters of every engine.io request (socketOptions.query); clientId is added. */
  baseQuery: Record<string, string>;
  settings: ConnectionSettings;
  status(status: ClientStatus): void;
  session(session: SessionPayload): void;
  authError(error: ClientError): void;
  replaced(payload: { clientId: string; reason: string }): void;
  identityReset(reset: { previousClientId: string; clientId: string }): void;
  shutdown(notice: ShutdownNotice & { delayMs: number }): void;
  error(error: Error): void;
  /** A handshake completed (epoch already bumped): resume rooms, flush what waited. */
  up(session: SessionPayload): void;
  /**
   * The connection is gone (epoch already bumped): rooms go offline, timers stop. `wasUp`: a
   * session had been established on it; `tooLarge`: the server closed it over a message's size.
   */
  down(info: { reason: string; wasUp: boolean; tooLarge: boolean }): void;
  /** The loop stopped for good (auth_error, replaced, fatal refusal). */
  stopped(error: ClientError): void;
  /** close() is under way, before the socket disconnects. */
  closing(): void;
}

/**
 * The connection loop: one connection to namespace /sync at a time, and what to do after each
 * failure.
 *
 * Reconnection is the SDK's, not socket.io-client's (`reconnection: false`): socket.io-client
 * reconnects at once after a transport close, which would defeat a server's `server:shutdown`
 * delay, and never retries a handshake the server refused, which would strand a client on a
 * transient INTERNAL_ERROR. Here every failure goes through one decision: auth failures stop and
 * surface `auth_error`, SESSION_INVALID gets one retry under a new identity, retryable codes and
 * network failures back off with full jitter, a takeover stops for good.
 */
export class ConnectionLoop {
  private statusValue: ClientStatus = { state: 'offline', reason: 'idle' };
  private sessionValue: SessionPayload | null = null;
  private running = false;
  private closed = false;
  private sessionUp = false;
  private epochValue = 0;
  private attemptId = 0;
  private failures = 0;
  private retryTimer: Timer | undefined;
  private connectTimer: Timer | undefined;
  private shutdownDelayMs: number | null = null;
  private identityResetDone = false;
  /** A handshake ever completed: later attempts are reconnects, earlier ones the first connect. */
  private hadSession = false;
  private waiters: { resolve(s: SessionPayload): void; reject(e: ClientError): void }[] = [];

  constructor(private readonly deps: ConnectionDeps) {
    this.listen();
  }

  get status(): ClientStatus {
    return this.statusValue;
  }

  get session(): SessionPayload | null {
    return this.sessionValue;
  }

  /** A handshake completed and the socket is up. */
  get connected(): boolean {
    return this.sessionUp;
  }

  /** Bumped on every handshake and every disconnect: async work started under another value is stale. */
  get epoch(): number {
    return this.epochValue;
  }

  get isRunning(): boolean {
    return this.running;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Starts (or restarts) the loop; resolves with the first session, rejects if the loop stops first. */
  connect(): Promise<SessionPayload> {
    if (this.closed) return Promise.reject(new ClientError('CLOSED', 'client is closed'));
    if (this.sessionUp && this.sessionValue) return Promise.resolve(this.sessionValue);
    const p = new Promise<SessionPayload>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.running) {
      this.running = true;
      this.failures = 0;
      this.identityResetDone = false;
      void this.attempt();
    }
    return p;
  }

  /** Final: stops the loop and disconnects (`closing` runs before the socket goes). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    this.clearTimers();
    this.deps.closing();
    this.deps.socket.disconnect();
    this.rejectWaiters(new ClientError('CLOSED', 'client closed'));
    this.setStatus({ state: 'offline', reason: 'closed' });
  }

  private async attempt(): Promise<void> {
    this.clearTimers();
    if (!this.running) return;
    const id = ++this.attemptId;
    const phase = this.hadSession ? 'reconnecting' : 'connecting';
    if (this.statusValue.state !== phase) this.setStatus({ state: phase, attempt: this.failures + 1, delayMs: 0 });
    try {
      await this.deps.identity.load();
    } catch (err) {
      this.deps.error(toError(err));
      this.retry();
      return;
    }
    if (id !== this.attemptId || !this.running) return;
    // socket.io-client has no timeout for the CONNECT packet (a hung handshake would hang forever).
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      if (id !== this.attemptId || this.sessionUp) return;
      this.deps.error(new ClientError('TIMEOUT', 'connection attempt timed out'));
      this.abortAttempt();
      this.retry();
    }, this.deps.settings.connectTimeoutMs);
    this.applyQuery();
    this.deps.socket.connect();
  }

  /**
   * `?clientId=` on every engine.io request of the next connection: nginx hashes on
   * `$arg_clientId`, so a client's polling requests stay on one worker and clients spread evenly
   * (an address hash piles a whole NAT onto one worker). Read from the Manager's options when
   * socket.io-client opens a new engine, i.e. at each connect.
   */
  private applyQuery(): void {
    const clientId = this.deps.identity.current?.clientId;
    this.deps.socket.io.opts.query = clientId ? { ...this.deps.baseQuery, clientId } : { ...this.deps.baseQuery };
  }

  /** socket.io-client's `auth` callback: evaluated on every connection attempt. */
  provideAuth(cb: (data: object) => void): void {
    const id = this.attemptId;
    (async () => {
      const token = this.deps.getToken ? await this.deps.getToken() : undefined;
      const identity = this.deps.identity.current!;
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
        this.deps.error(toError(err, 'getToken failed'));
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
    const delay = delayMs ?? backoffDelay(this.failures, this.deps.settings.reconnect, this.deps.settings.random);
    // `attempt` is the number of the attempt that runs after the delay: the first connect counts
    // its first try as 1, a reconnect counts from the first try after the drop.
    if (this.hadSession) this.setStatus({ state: 'reconnecting', attempt: this.failures, delayMs: delay });
    else this.setStatus({ state: 'connecting', attempt: this.failures + 1, delayMs: delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.attempt();
    }, delay);
  }

  /** Ends the current attempt without triggering the disconnect handler's own retry. */
  private abortAttempt(): void {
    this.attemptId++;
    this.deps.socket.disconnect();
  }

  /** Stops reconnecting (auth failure, takeover, fatal refusal); connect() may start again. */
  private stop(reason: OfflineReason, error: ClientError): void {
    this.running = false;
    this.clearTimers();
    this.attemptId++;
    if (this.deps.socket.active || this.deps.socket.connected) this.deps.socket.disconnect();
    this.setStatus({ state: 'offline', reason });
    this.rejectWaiters(error);
    this.deps.stopped(error);
  }

  private listen(): void {
    const s = this.deps.socket;
    s.on('session', (session) => this.onSession(session));
    s.on('connect_error', (err) => this.onConnectError(err));
    s.on('disconnect', (reason, description) => this.onDisconnect(reason, description));
    s.on('session:replaced', (p) => {
      this.deps.replaced(p);
      this.stop('replaced', new ClientError('SESSION_REPLACED'));
    });
    s.on('server:shutdown', (notice) => {
      const delayMs = shutdownDelay(notice.reconnectAfterMs, this.deps.settings.shutdownJitterMs, this.deps.settings.random);
      this.shutdownDelayMs = delayMs;
      this.deps.shutdown({ ...notice, delayMs });
    });
  }

  private onSession(session: SessionPayload): void {
    if (!this.running) return;
    this.clearTimers();
    this.failures = 0;
    this.identityResetDone = false;
    this.shutdownDelayMs = null;
    this.sessionValue = session;
    if (this.deps.identity.adopt(session)) this.applyQuery();
    this.epochValue++;
    this.sessionUp = true;
    this.hadSession = true;
    this.setStatus({ state: 'connected', nodeId: session.nodeId });
    this.deps.session(session);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(session);
    this.deps.up(session);
  }

  private onConnectError(err: Error): void {
    if (!this.running) return;
    this.clearTimers();
    const code = connectErrorCode(err);
    if (code === 'INVALID_TOKEN' || code === 'UNAUTHORIZED') {
      const e = new ClientError(code, err.message);
      this.stop('auth_error', e);
      this.deps.authError(e);
      return;
    }
    if (code === 'SESSION_INVALID') {
      if (this.identityResetDone) {
        this.stop('fatal', new ClientError(code, err.message));
        return;
      }
      this.identityResetDone = true;
      void this.deps.identity.reset().then(
        (reset) => {
          this.applyQuery();
          this.deps.identityReset(reset);
          if (this.running) void this.attempt();
        },
        (e: unknown) => {
          this.deps.error(toError(e));
          this.retry();
        },
      );
      return;
    }
    if (code && !isRetryable(code)) {
      const e = new ClientError(code, err.message);
      this.deps.error(e);
      this.stop('fatal', e);
      return;
    }
    // Network failure (no code) or a retryable refusal (INTERNAL_ERROR, RATE_LIMITED...).
    this.retry();
  }

  private onDisconnect(reason: string, description: unknown): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    const wasUp = this.sessionUp;
    this.sessionUp = false;
    this.epochValue++;
    this.deps.down({ reason, wasUp, tooLarge: closedForSize(description) });
    // 'io client disconnect' is ours (close, stop, abort): whoever did it decides what comes next.
    if (!this.running || reason === 'io client disconnect') return;
    const delay = this.shutdownDelayMs ?? undefined;
    this.shutdownDelayMs = null;
    this.retry(delay);
  }

  private setStatus(status: ClientStatus): void {
    this.statusValue = status;
    this.deps.status(status);
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

export function toError(err: unknown, context?: string): Error {
  if (err instanceof Error) return err;
  return new Error(context ? `${context}: ${String(err)}` : String(err));
}

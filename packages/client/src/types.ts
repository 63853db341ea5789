import type {
  Ack,
  ClientToServerEvents,
  InboxMessage,
  Participant,
  ParticipantJoined,
  ParticipantLeft,
  PlaybackControlChanged,
  PlaybackEvent,
  PlaybackState,
  PlaybackSync,
  PresenceBatch,
  RoomEvent,
  RoomInfo,
  SequencedEvents,
  SequencedName,
  SessionPayload,
  ShutdownNotice,
} from '@tether/protocol';
import type { BackoffOptions } from './backoff.js';
import type { ClientError, ClientErrorCode } from './errors.js';
import type { Room } from './room.js';
import type { StorageOption } from './storage.js';

/** Request names of the wire contract, their payloads and ack data. */
export type RequestName = keyof ClientToServerEvents;
export type RequestPayload<E extends RequestName> = Parameters<ClientToServerEvents[E]>[0];
export type RequestResult<E extends RequestName> = Parameters<ClientToServerEvents[E]>[1] extends (r: Ack<infer T>) => void ? T : never;

/** One sequenced room event as the SDK hands it over: its wire name, seq and payload. */
export type SequencedEntry = { [K in SequencedName]: { name: K; seq: number; payload: SequencedEvents[K] } }[SequencedName];

export interface TetherClientOptions {
  /** Server origin, e.g. `https://rt.example.com` (the SDK appends the /sync namespace). */
  url: string;
  /** Socket.IO HTTP path on the server. Default `/socket.io`. */
  path?: string;
  /** Default `['websocket']`; add 'polling' only behind a sticky balancer. */
  transports?: ('websocket' | 'polling' | 'webtransport')[];
  /**
   * Called before every connection attempt (first connect and each reconnect); return the JWT to
   * present, or undefined to connect as a guest. A rejection counts as a failed attempt (retried
   * with backoff, reported as 'error').
   */
  getToken?: () => Promise<string | undefined> | string | undefined;
  /** Where clientId and sessionToken persist. Default 'memory'. */
  storage?: StorageOption;
  /** Key prefix in storage. Default 'tether:'. */
  storageKey?: string;
  /** Reconnect backoff (full jitter). Default { baseMs: 500, maxMs: 30000 }. */
  reconnect?: Partial<BackoffOptions>;
  /** Extra random delay added to a `server:shutdown` reconnectAfterMs. Default 500. */
  shutdownJitterMs?: number;
  /** Budget for one connection attempt (transport open + handshake + `session`). Default 10000. */
  connectTimeoutMs?: number;
  /** Ack timeout of every request (join, rejoin, catch-up, publish...). Default 10000. */
  requestTimeoutMs?: number;
  /**
   * The largest message the SDK sends, in bytes as serialized (the server's MAX_PAYLOAD_BYTES,
   * default 65536). A publish, signal or request over it is refused locally with
   * PAYLOAD_TOO_LARGE instead of making the server close the connection.
   */
  maxPayloadBytes?: number;
  /**
   * How long a hole in a room's seq stream waits for a late broadcast before catch-up, at least.
   * Default 300. The wait learns from how late broadcasts actually arrive (twice the largest recent
   * lateness, halving every 30 s), up to `holeWaitMaxMs`, plus a random 0–50 %.
   */
  holeWaitMs?: number;
  /** Cap of the learned hole wait. Default 5000. */
  holeWaitMaxMs?: number;
  /**
   * A freshly joined room holds its first `state` and its events until the app attaches a listener
   * for them (delivery then starts one macrotask later), or this long after the join if it never
   * does. Default 2000. See "Joining" in docs/CLIENT.md.
   */
  deliveryHoldMs?: number;
  /** Page size of room:catchup requests (the server caps it). Default 500. */
  catchupLimit?: number;
  /** Backoff of retryable request failures (RATE_LIMITED, INTERNAL_ERROR). Default { baseMs: 200, maxMs: 5000 }. */
  retry?: Partial<BackoffOptions>;
  /**
   * When a rejoin finds the client no longer a member of a code room (grace period expired, or a
   * new identity after SESSION_INVALID), join it again with the original options. Default true.
   */
  rejoinAfterEviction?: boolean;
  /** Injected for deterministic tests. Default Math.random. */
  random?: () => number;
  /**
   * Clock sync (NTP style, see docs/PLAYBACK.md): after a room is joined or resumed, a burst of
   * `samples` sync:ping requests (default 6), then one ping every `intervalMs` (default 10000)
   * while a room is live; each round reports the RTT to every live room with sync:report.
   * `false` turns it off (serverNow() then equals the local clock).
   */
  clockSync?: false | { samples?: number; intervalMs?: number; window?: number; best?: number };
  /** The local clock used for clock sync (ms since the epoch). Default Date.now. */
  now?: () => number;
  /**
   * Extra socket.io-client Manager options (advanced; reconnection is always managed by the SDK).
   * A `query` is kept, with `clientId` added by the SDK (load-balancer affinity).
   */
  socketOptions?: Record<string, unknown>;
}

/** The client's current estimate of the server clock (`client.on('clock', …)`). */
export interface ClockEstimate {
  /** Server clock minus local clock, ms. */
  offsetMs: number;
  /** Round trip to the server, ms (median of the best samples). */
  rttMs: number;
  /** Samples the estimate is built on. */
  samples: number;
}

/**
 * `connecting`: no handshake completed yet (the first connect); `reconnecting`: later ones. In both,
 * `attempt` is the number of the attempt under way or coming after `delayMs` (1-based: the first
 * connect's first try is 1, a reconnect's first try after the drop is 1).
 */
export type ClientStatus =
  | { state: 'connected'; nodeId: string }
  | { state: 'connecting'; attempt: number; delayMs: number }
  | { state: 'reconnecting'; attempt: number; delayMs: number }
  | { state: 'offline'; reason: OfflineReason };

export type OfflineReason = 'idle' | 'closed' | 'auth_error' | 'replaced' | 'fatal';

export interface ClientEvents {
  status: ClientStatus;
  /** Every successful handshake (first connect and each reconnect). */
  session: SessionPayload;
  /** The server refused the credentials (INVALID_TOKEN / UNAUTHORIZED): the SDK stopped reconnecting. */
  auth_error: ClientError;
  /** Another connection took over this clientId: the SDK stopped reconnecting. */
  replaced: { clientId: string; reason: string };
  /** The server refused the stored identity (SESSION_INVALID): a new clientId was generated. */
  identity_reset: { previousClientId: string; clientId: string };
  /** The server is draining; the SDK reconnects after `delayMs`. */
  shutdown: ShutdownNotice & { delayMs: number };
  /** A program room (JWT `rooms` claim) became available on this connection. */
  room: Room;
  /** A user-inbox message. Acked to the server after every listener (and the promises they return) finished. */
  message: InboxMessage;
  /** A clock-sync round finished (the initial burst after a connect, then every interval). */
  clock: ClockEstimate;
  /**
   * An established connection ended (the SDK reconnects unless it was closed or stopped). `reason`
   * is socket.io-client's ('transport close', 'ping timeout', 'io server disconnect'…); `code`
   * says why when the SDK knows: PAYLOAD_TOO_LARGE when the server closed it over a message's size.
   */
  disconnected: { reason: string; code?: ClientErrorCode };
  /** Something failed that the SDK handles itself (it keeps going); for logging. */
  error: ClientError | Error;
}

export interface RoomState {
  info: RoomInfo;
  participants: Participant[];
  playback: PlaybackState;
  /** Seq of the last event the state includes. */
  seq: number;
  /** The room life `seq` counts in (null: the server did not say). */
  incarnation: string | null;
  serverTimestamp: number;
}

/** `joining` → `live` ⇄ `syncing` (connected, re-establishing its position) / `offline` → `closed`. */
export type RoomStatus = 'joining' | 'syncing' | 'live' | 'offline' | 'closed';

export type RoomCloseReason = 'left' | 'client_closed' | 'revoked' | 'error';

export interface RoomEvents {
  /** App events (room:event), exactly once and in seq order. */
  event: RoomEvent;
  'participant:joined': ParticipantJoined;
  'participant:left': ParticipantLeft;
  presence: PresenceBatch;
  /** playback:start / pause / seek / stop, with `action` (sequenced; `room.playback` is already updated). */
  playback: PlaybackEvent;
  'playback:control': PlaybackControlChanged;
  /**
   * Unsequenced periodic drift sync of a playing room; only emitted when it matches the current
   * state (`shouldApplySync`): a sync computed before a pause/seek/stop that arrives after it is dropped.
   */
  'playback:sync': PlaybackSync;
  /** Every sequenced event, after its specific event: the extension point for helpers. */
  sequenced: SequencedEntry;
  /** Local state was replaced wholesale: after the first join and after every snapshot. */
  state: RoomState;
  /**
   * The room came back after a reconnect, a gap or a changed incarnation: recovered=false means the
   * state was replaced by a snapshot (always so when the room was recreated under a new incarnation).
   */
  resumed: { recovered: boolean };
  /** `room.status` changed (joining, syncing, live, offline, closed): a UI need not poll it. */
  status: RoomStatus;
  /** Ephemeral, unsequenced message from another member. */
  signal: { roomId: string; from: string; type: string; data: unknown };
  /** A published message changed status (pending → sent | failed). */
  publish: OutgoingMessage;
  /** The handle is dead: left, client closed, access revoked, or an unrecoverable error. */
  closed: { reason: RoomCloseReason; error?: ClientError };
}

export type PublishStatus = 'pending' | 'sent' | 'failed';

/** A message given to `room.publish()`, followed until the server acked it or it failed. */
export interface OutgoingMessage {
  readonly clientMsgId: string;
  readonly type: string;
  readonly data: unknown;
  readonly status: PublishStatus;
  /** Seq the server gave the event (status 'sent'). */
  readonly seq?: number;
  /** The server had already published this clientMsgId (a resend after a lost ack). */
  readonly duplicate?: boolean;
  /** Why it failed (status 'failed'). */
  readonly error?: ClientError;
  /** Number of times it was sent to the server. */
  readonly attempts: number;
  /** Resolves once the server acked (with its seq); rejects with a ClientError when it failed. */
  sent(): Promise<{ seq: number; duplicate: boolean }>;
}

export interface JoinOptions {
  password?: string;
  guestName?: string;
}

import type { BackoffOptions } from './backoff.js';
import type { ClientError } from './errors.js';
import type { Room } from './room.js';
import type { RequestName, RequestPayload, RequestResult } from './types.js';

/** What a Room needs from its TetherClient; kept narrow so the room logic stays testable. */
export interface RoomHost {
  /** Bumped on every handshake and every disconnect: async work started under another value is stale. */
  readonly connEpoch: number;
  /** A handshake completed and the socket is up. */
  readonly connected: boolean;
  readonly clientId: string | null;
  /** Whether this connection's server offers an optional protocol feature (SessionPayload.features). */
  serverOffers?(feature: string): boolean;
  readonly settings: {
    holeWaitMs: number;
    /** Cap of the learned hole wait (default 5000). */
    holeWaitMaxMs?: number;
    /** The local clock (default Date.now). */
    now?: () => number;
    catchupLimit: number;
    retry: BackoffOptions;
    rejoinAfterEviction: boolean;
    random: () => number;
    /** How long a fresh handle holds its stream for the app's first listener (default 2000). */
    deliveryHoldMs?: number;
  };
  request<E extends RequestName>(event: E, payload: RequestPayload<E>): Promise<RequestResult<E>>;
  /** Why a request could not be sent at all (PAYLOAD_TOO_LARGE, INVALID_PAYLOAD), or null. */
  frameError?(event: RequestName, payload: unknown): ClientError | null;
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

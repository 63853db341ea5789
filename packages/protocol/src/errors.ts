/**
 * The error catalogue: every code a client can see, over the socket (ack `error.code`,
 * `room:error`, `connect_error` `data.code`) or over HTTP (`{ error: { code, message } }`).
 * `retry` tells a client whether repeating the same request later can succeed without the
 * user changing anything (Centrifuge's disconnect codes carry the same bit).
 * docs/PROTOCOL.md documents each code; test/unit/protocol-docs.test.ts keeps the two in step.
 */
export const ERRORS = {
  ROOM_NOT_FOUND: { status: 404, retry: false, message: 'room does not exist or has expired' },
  ROOM_FULL: { status: 409, retry: true, message: 'room has reached maxParticipants' },
  INVALID_PASSWORD: { status: 403, retry: false, message: 'wrong or missing room password' },
  UNAUTHORIZED: { status: 403, retry: false, message: 'not allowed to do this' },
  ALREADY_IN_ROOM: { status: 409, retry: false, message: 'this client is already in a room; leave it first' },
  NOT_IN_ROOM: { status: 409, retry: false, message: 'this client is not a member of that room; join it' },
  INVALID_TOKEN: { status: 401, retry: false, message: 'JWT is malformed, expired or badly signed' },
  INVALID_PAYLOAD: { status: 400, retry: false, message: 'payload failed validation' },
  RATE_LIMITED: { status: 429, retry: true, message: 'too many requests; slow down' },
  SESSION_INVALID: { status: 401, retry: false, message: 'clientId is bound to another session token; use a new clientId' },
  SESSION_REPLACED: { status: 409, retry: false, message: 'this clientId connected again elsewhere; this socket is closing' },
  SERVER_DRAINING: { status: 503, retry: true, message: 'this worker is shutting down; connect again (another worker will answer)' },
  NOT_FOUND: { status: 404, retry: false, message: 'no such resource' },
  UNKNOWN_EVENT: { status: 400, retry: false, message: 'no such request event' },
  PAYLOAD_TOO_LARGE: { status: 413, retry: false, message: 'request body larger than MAX_PAYLOAD_BYTES' },
  URI_TOO_LONG: { status: 414, retry: false, message: 'a path parameter is too long' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, retry: false, message: 'send JSON (content-type: application/json)' },
  HEADERS_TOO_LARGE: { status: 431, retry: false, message: 'request headers too large' },
  REQUEST_TIMEOUT: { status: 408, retry: true, message: 'the request was not received in time' },
  INTERNAL_ERROR: { status: 500, retry: true, message: 'unexpected server error' },
} as const satisfies Record<string, { status: number; retry: boolean; message: string }>;

export type ErrorCode = keyof typeof ERRORS;
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  /** Field-level detail for INVALID_PAYLOAD; absent otherwise. */
  details?: { path: string; message: string }[];
  /** RATE_LIMITED: how long until the same request can succeed. */
  retryAfterMs?: number;
  /** room:error of an automatic rejoin (handshake auth.roomId / program rooms): the room it was about. */
  roomId?: string;
}

/** A failure the server expects and reports to the client as-is. */
export class TetherError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly details?: { path: string; message: string }[],
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TetherError';
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.details) body.details = this.details;
    if (this.retryAfterMs !== undefined) body.retryAfterMs = this.retryAfterMs;
    return body;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERRORS, value);
}

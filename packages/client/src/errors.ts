import { ERRORS, isErrorCode, type ErrorBody, type ErrorCode } from '@tether/protocol';

/**
 * Codes the SDK adds to the server's catalogue (protocol/errors.ts) for failures that never
 * reached a server answer.
 */
export const CLIENT_ERRORS = {
  /** No ack within the request timeout while the connection stayed up. */
  TIMEOUT: { retry: true, message: 'the server did not answer in time' },
  /** The connection dropped before the answer came. */
  DISCONNECTED: { retry: true, message: 'the connection dropped before the server answered' },
  /** The request needs a live connection (signals are never queued). */
  OFFLINE: { retry: true, message: 'not connected' },
  /** The client was closed, or the room left, before the request could complete. */
  CLOSED: { retry: false, message: 'the client or room was closed' },
  /**
   * A message over the size limit: refused by the SDK before sending (over `maxPayloadBytes`), or
   * the server closed the connection because of one (WebSocket close 1009, HTTP 413).
   */
  PAYLOAD_TOO_LARGE: { retry: false, message: 'the message is larger than the server accepts' },
} as const;

export type ClientOnlyCode = keyof typeof CLIENT_ERRORS;
export type ClientErrorCode = ErrorCode | ClientOnlyCode;

export class ClientError extends Error {
  readonly code: ClientErrorCode;
  readonly details?: { path: string; message: string }[];

  constructor(code: ClientErrorCode, message?: string, details?: { path: string; message: string }[]) {
    super(message ?? defaultMessage(code));
    this.name = 'TetherClientError';
    this.code = code;
    if (details) this.details = details;
  }

  /** Whether the same request may succeed later without the user changing anything. */
  get retryable(): boolean {
    return isRetryable(this.code);
  }

  static fromBody(body: ErrorBody): ClientError {
    return new ClientError(isErrorCode(body.code) ? body.code : 'INTERNAL_ERROR', body.message, body.details);
  }
}

export function isRetryable(code: string): boolean {
  if (isErrorCode(code)) return ERRORS[code].retry;
  if (Object.hasOwn(CLIENT_ERRORS, code)) return CLIENT_ERRORS[code as ClientOnlyCode].retry;
  return false;
}

function defaultMessage(code: ClientErrorCode): string {
  return isErrorCode(code) ? ERRORS[code].message : CLIENT_ERRORS[code].message;
}

/** A connect_error's server code, when the server refused the handshake (middleware `data`). */
export function connectErrorCode(err: unknown): ErrorCode | null {
  const code = (err as { data?: { code?: unknown } } | null)?.data?.code;
  return isErrorCode(code) ? code : null;
}

export function toClientError(err: unknown): ClientError {
  if (err instanceof ClientError) return err;
  return new ClientError('INTERNAL_ERROR', err instanceof Error ? err.message : String(err));
}

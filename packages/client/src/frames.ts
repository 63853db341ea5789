import { NAMESPACE } from '@tether/protocol';
import { ClientError } from './errors.js';

/** The server's default MAX_PAYLOAD_BYTES (Engine.IO maxHttpBufferSize): the largest message it accepts. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;

// `42/sync,<ack id>` in front of the JSON array: packet types, namespace, comma, up to 16 digits.
const FRAME_OVERHEAD = 2 + NAMESPACE.length + 1 + 16;

/**
 * The size in bytes of the Socket.IO message a request becomes (`42/sync,<id>["event",payload]`,
 * UTF-8; the ack id counted at its longest). Throws INVALID_PAYLOAD when the payload cannot be
 * serialized (a cycle, a BigInt): the encoder would throw the same, later and less clearly.
 */
export function frameBytes(event: string, payload: unknown): number {
  return FRAME_OVERHEAD + utf8Length(serialize(event, payload));
}

/** PAYLOAD_TOO_LARGE for a message of `bytes` over `limit`, else null. */
export function sizeError(event: string, bytes: number, limit: number): ClientError | null {
  if (bytes <= limit) return null;
  return new ClientError('PAYLOAD_TOO_LARGE', `${event}: the message would be ${bytes} bytes, over the ${limit}-byte limit (maxPayloadBytes; the server's MAX_PAYLOAD_BYTES)`);
}

function serialize(event: string, payload: unknown): string {
  try {
    return JSON.stringify([event, payload]);
  } catch (err) {
    throw new ClientError('INVALID_PAYLOAD', `${event}: payload is not serializable (${err instanceof Error ? err.message : String(err)})`);
  }
}

/**
 * Whether a disconnect means the server refused a message over its size limit: a WebSocket closed
 * with 1009 (message too big), or an HTTP long-polling POST answered 413. socket.io-client passes
 * the close event / the failed request as the disconnect's `description.context`.
 */
export function closedForSize(description: unknown): boolean {
  const d = description as { description?: unknown; context?: { code?: unknown; status?: unknown } } | undefined;
  return d?.context?.code === 1009 || d?.context?.status === 413 || d?.description === 413;
}

function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

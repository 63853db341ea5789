import { TetherError } from '@tether/protocol';

/** Serializes app data (room events, signals, direct messages), refusing more than maxBytes. */
export function encodeEventData(data: unknown, maxBytes: number): string {
  const json = JSON.stringify(data ?? null);
  if (Buffer.byteLength(json) > maxBytes) throw new TetherError('INVALID_PAYLOAD', `data is larger than ${maxBytes} bytes`);
  return json;
}

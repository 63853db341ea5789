import { socketRoom, type SequencedEvents, type SequencedName } from '../protocol/events.js';
import type { TetherNamespace } from '../transport/types.js';

/**
 * Sends a sequenced room event to every socket in the room on every worker (through the Redis
 * adapter). Called only after the event's Lua append returned its seq: what is broadcast is always
 * in the log first, so a client that misses the broadcast can fetch it.
 */
export function broadcast<K extends SequencedName>(nsp: TetherNamespace, name: K, payload: SequencedEvents[K], exceptSocketId?: string): void {
  const target = exceptSocketId ? nsp.to(socketRoom(payload.roomId)).except(exceptSocketId) : nsp.to(socketRoom(payload.roomId));
  // The emit signature is a union over event names; K narrows it at the call site.
  (target.emit as (ev: string, p: unknown) => boolean)(name, payload);
}

import type { Conn } from './port.js';
import { TetherError } from '@tether/protocol';

/**
 * The room a request targets: the given roomId, or the connection's code-joined room. It must be
 * that room or one of the connection's program rooms (JWT claim); anything else is NOT_IN_ROOM
 * before any Redis round trip. The Lua scripts re-check membership atomically where it matters.
 */
export function targetRoom(conn: Conn, roomId: string | undefined): { roomId: string; program: boolean } {
  const id = roomId ?? conn.data.roomId;
  if (!id) throw new TetherError('NOT_IN_ROOM', 'join or rejoin a room first');
  if (conn.data.programRooms.includes(id)) return { roomId: id, program: true };
  if (id !== conn.data.roomId) throw new TetherError('NOT_IN_ROOM');
  return { roomId: id, program: false };
}

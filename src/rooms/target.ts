import { TetherError } from '../protocol/errors.js';
import type { TetherSocket } from '../transport/types.js';

/**
 * The room a request targets: the given roomId, or the socket's code-joined room. It must be that
 * room or one of the socket's program rooms (JWT claim); anything else is NOT_IN_ROOM before any
 * Redis round trip. The Lua scripts re-check membership atomically where it matters.
 */
export function targetRoom(socket: TetherSocket, roomId: string | undefined): { roomId: string; program: boolean } {
  const id = roomId ?? socket.data.roomId;
  if (!id) throw new TetherError('NOT_IN_ROOM', 'join or rejoin a room first');
  if (socket.data.programRooms.includes(id)) return { roomId: id, program: true };
  if (id !== socket.data.roomId) throw new TetherError('NOT_IN_ROOM');
  return { roomId: id, program: false };
}

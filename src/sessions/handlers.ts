import { RoomRejoin } from '../protocol/schemas.js';
import { request, type RequestDef } from '../transport/handle.js';
import type { SessionService } from './service.js';

export function sessionRequests(sessions: SessionService): RequestDef[] {
  return [
    request('room:rejoin', RoomRejoin, async (socket, input) => {
      const roomId = (input.roomId ?? input.roomCode)!;
      return (await sessions.rejoin(socket, roomId, { lastSeq: input.lastSeq, incarnation: input.incarnation })).result;
    }),
  ];
}

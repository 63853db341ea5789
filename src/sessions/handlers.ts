import type { Logger } from '../observability/logger.js';
import { RoomRejoin } from '../protocol/schemas.js';
import { handle } from '../transport/handle.js';
import type { TetherSocket } from '../transport/types.js';
import type { SessionService } from './service.js';

export function registerSessionHandlers(socket: TetherSocket, sessions: SessionService, log: Logger): void {
  handle(socket, log, 'room:rejoin', RoomRejoin, async (input) => {
    const roomId = (input.roomId ?? input.roomCode)!;
    return (await sessions.rejoin(socket, roomId, input.lastSeq)).result;
  });
}

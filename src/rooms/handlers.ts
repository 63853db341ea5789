import { socketRoom } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import { RoomCreate, RoomJoin, RoomLeave } from '../protocol/schemas.js';
import type { SessionService } from '../sessions/service.js';
import { request, type RequestDef } from '../transport/handle.js';
import type { IncomingMessage } from 'node:http';
import type { CatchupService } from '../catchup/service.js';
import type { Limits } from '../limits/limits.js';
import type { RoomService } from './service.js';

export function roomRequests(rooms: RoomService, sessions: SessionService, catchup: CatchupService, limits: Limits, addressOf: (req: IncomingMessage) => string): RequestDef[] {
  return [
    request('room:create', RoomCreate, async (socket, input) => {
      if (!socket.data.userId) throw new TetherError('UNAUTHORIZED', 'guests cannot create rooms; connect with a JWT');
      await limits.createRoom(socket.data.userId);
      return rooms.create(input, { userId: socket.data.userId }, 'socket');
    }),

    request('room:join', RoomJoin, async (socket, input) => {
      const { clientId, epoch, userId } = socket.data;
      const roomId = input.roomCode;
      if (socket.data.roomId && socket.data.roomId !== roomId) throw new TetherError('ALREADY_IN_ROOM', `already in room ${socket.data.roomId}; leave it first`);
      const name = socket.data.userId ? socket.data.name : (input.guestName ?? socket.data.name);

      await rooms.verifyEntry(roomId, input.password, () => limits.passwordAttempt(roomId, clientId, addressOf(socket.request)));
      const { fresh } = await sessions.claimRoom(clientId, epoch, roomId);
      let result;
      try {
        result = await rooms.admit(roomId, { clientId, userId, name, epoch });
      } catch (err) {
        if (fresh) await sessions.releaseRoom(clientId, epoch, roomId);
        throw err;
      }
      if (!result) {
        // Already a member (a reload, a second tab after takeover): this is a rejoin, answered like
        // a join (room:state and the ack), not with a second copy as room:state_snapshot.
        const { snapshot } = await sessions.rejoin(socket, roomId, {}, { emitSnapshot: false });
        const state = snapshot ?? (await rooms.snapshot(roomId));
        const self = state.participants.find((p) => p.clientId === clientId);
        if (!self) throw new TetherError('NOT_IN_ROOM');
        socket.emit('room:state', state);
        return { ...state, self };
      }
      socket.data.roomId = roomId;
      rooms.announceJoin(roomId, result.seq, result.self, socket.id);
      const { self, ...state } = result;
      socket.emit('room:state', state);
      // Only an admitted socket joins the Socket.IO room (a wrong password never hears a thing);
      // what was appended between admission and this join is filled from the log.
      await socket.join(socketRoom(roomId));
      await catchup.fill(socket, roomId, result.seq, result.incarnation);
      return result;
    }),

    request('room:leave', RoomLeave, async (socket, input) => {
      const roomId = input.roomId ?? socket.data.roomId ?? (await sessions.currentRoom(socket.data.clientId));
      if (!roomId) throw new TetherError('NOT_IN_ROOM');
      await socket.leave(socketRoom(roomId));
      if (socket.data.roomId === roomId) socket.data.roomId = null;
      if (!(await sessions.leave(roomId, socket.data.clientId, socket.data.epoch, 'left'))) throw new TetherError('SESSION_REPLACED');
      return { roomId };
    }),
  ];
}

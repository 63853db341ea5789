import { socketRoom } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import { RoomCreate, RoomJoin, RoomLeave } from '../protocol/schemas.js';
import type { SessionService } from '../sessions/service.js';
import { request, type RequestDef } from '../transport/handle.js';
import type { RoomService } from './service.js';

export function roomRequests(rooms: RoomService, sessions: SessionService): RequestDef[] {
  return [
    request('room:create', RoomCreate, async (socket, input) => {
      if (!socket.data.userId) throw new TetherError('UNAUTHORIZED', 'guests cannot create rooms; connect with a JWT');
      return rooms.create(input, { userId: socket.data.userId }, 'socket');
    }),

    request('room:join', RoomJoin, async (socket, input) => {
      const { clientId, epoch, userId } = socket.data;
      const roomId = input.roomCode;
      const current = socket.data.roomId ?? (await sessions.currentRoom(clientId));
      if (current && current !== roomId) throw new TetherError('ALREADY_IN_ROOM', `already in room ${current}; leave it first`);

      const name = socket.data.userId ? socket.data.name : (input.guestName ?? socket.data.name);
      // In the Socket.IO room before the join is appended: the joiner cannot miss an event that
      // comes after its room:state (duplicates are dropped by seq on the client).
      await socket.join(socketRoom(roomId));
      let result;
      try {
        result = await rooms.join(roomId, { clientId, userId, name, epoch }, input.password);
      } catch (err) {
        if (socket.data.roomId !== roomId) await socket.leave(socketRoom(roomId));
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
      await sessions.setRoom(clientId, roomId);
      socket.data.roomId = roomId;
      rooms.announceJoin(roomId, result.seq, result.self, socket.id);
      const { self, ...state } = result;
      socket.emit('room:state', state);
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

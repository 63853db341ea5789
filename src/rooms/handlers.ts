import { TetherError } from '@tether/protocol';
import { RoomCreate } from '../protocol/schemas.js';
import { request, type RequestDef } from '../fanout/requests.js';
import type { RoomService } from './service.js';

export function roomRequests(rooms: RoomService): RequestDef[] {
  return [
    request('room:create', RoomCreate, async (conn, input) => {
      if (!conn.data.userId) throw new TetherError('UNAUTHORIZED', 'guests cannot create rooms; connect with a JWT');
      return rooms.create(input, { userId: conn.data.userId }, 'socket');
    }),
  ];
}

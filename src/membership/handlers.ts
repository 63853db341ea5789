import { request, type RequestDef } from '../fanout/requests.js';
import { RoomJoin, RoomLeave, RoomRejoin } from '../protocol/schemas.js';
import type { MembershipService } from './service.js';

export function membershipRequests(membership: MembershipService): RequestDef[] {
  return [
    request('room:join', RoomJoin, (conn, input) => membership.join(conn, input)),
    request('room:leave', RoomLeave, (conn, input) => membership.leave(conn, input.roomId)),
    request('room:rejoin', RoomRejoin, async (conn, input) => {
      const roomId = (input.roomId ?? input.roomCode)!;
      return (await membership.rejoin(conn, roomId, { lastSeq: input.lastSeq, incarnation: input.incarnation })).result;
    }),
  ];
}

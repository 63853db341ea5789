import type { FastifyInstance } from 'fastify';
import type { HttpAuth } from '../fanout/http.js';
import { TetherError } from '../protocol/errors.js';
import { HttpRoomCreate, RoomCode, RoomId } from '../protocol/schemas.js';
import type { RoomService } from './service.js';

/** `POST /v1/rooms` (user JWT) and `GET /v1/rooms/:code` (public info, never the password hash). */
export function roomRoutes(rooms: RoomService) {
  return (app: FastifyInstance, auth: HttpAuth): void => {
    app.post('/v1/rooms', async (req, reply) => {
      const identity = await auth.user(req);
      const input = auth.body(HttpRoomCreate, req.body);
      return reply.status(201).send(await rooms.create(input, { userId: identity.userId }, 'http'));
    });
    app.get('/v1/rooms/:code', async (req) => {
      const raw = (req.params as { code: string }).code;
      const code = RoomCode.safeParse(raw);
      const id = code.success ? code.data : RoomId.safeParse(raw).success ? raw : null;
      if (!id) throw new TetherError('ROOM_NOT_FOUND');
      return rooms.info(id);
    });
  };
}

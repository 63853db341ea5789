import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HttpAuth } from '../fanout/http.js';
import { ERROR_RESPONSES, RoomInfoSchema } from '../protocol/http-schemas.js';
import { TetherError } from '@tether/protocol';
import { HttpRoomCreate, RoomCode, RoomId } from '../protocol/schemas.js';
import type { RoomService } from './service.js';

const ListQuery = z.object({
  cursor: z.string().regex(/^\d+:[A-Za-z0-9_-]{1,64}$/, 'a cursor as returned by the previous page').optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/** Rooms over HTTP: create (user JWT), public info, and the operators' listing (service). */
export function roomRoutes(rooms: RoomService) {
  return (app: FastifyInstance, auth: HttpAuth): void => {
    const api = app.withTypeProvider<ZodTypeProvider>();
    api.post(
      '/v1/rooms',
      { schema: { summary: 'Create a room (the creating user becomes host when it joins)', tags: ['rooms'], security: [{ user: [] }], body: HttpRoomCreate, response: { 201: RoomInfoSchema, ...ERROR_RESPONSES } } },
      async (req, reply) => {
        const identity = await auth.user(req);
        return reply.status(201).send(await rooms.create(req.body, { userId: identity.userId }, 'http'));
      },
    );
    api.get(
      '/v1/rooms/:code',
      { schema: { summary: 'Public room info (never the password or its hash)', tags: ['rooms'], params: z.object({ code: z.string().max(64) }), response: { 200: RoomInfoSchema, ...ERROR_RESPONSES } } },
      async (req) => {
        const raw = req.params.code;
        const code = RoomCode.safeParse(raw);
        const id = code.success ? code.data : RoomId.safeParse(raw).success ? raw : null;
        if (!id) throw new TetherError('ROOM_NOT_FOUND');
        return rooms.info(id);
      },
    );
    api.get(
      '/v1/rooms',
      {
        schema: {
          summary: 'Every room, oldest first, paged (for operators)',
          tags: ['rooms'],
          security: [{ service: [] }],
          querystring: ListQuery,
          response: { 200: z.object({ rooms: z.array(RoomInfoSchema.extend({ members: z.number() })), nextCursor: z.string().nullable() }), ...ERROR_RESPONSES },
        },
      },
      async (req) => {
        await auth.service(req);
        return rooms.list(req.query.cursor ?? null, req.query.limit);
      },
    );
  };
}

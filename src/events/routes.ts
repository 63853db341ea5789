import type { FastifyInstance } from 'fastify';
import type { HttpAuth } from '../fanout/http.js';
import { TetherError } from '../protocol/errors.js';
import { HttpPublish, RoomId } from '../protocol/schemas.js';
import type { EventService } from './service.js';

/** `POST /v1/rooms/:id/events`: a backend service publishes to a room (same seq/log path as sockets). */
export function eventRoutes(events: EventService) {
  return (app: FastifyInstance, auth: HttpAuth): void => {
    app.post('/v1/rooms/:id/events', async (req, reply) => {
      const from = await auth.service(req);
      const id = RoomId.safeParse((req.params as { id: string }).id);
      if (!id.success) throw new TetherError('ROOM_NOT_FOUND');
      const input = auth.body(HttpPublish, req.body);
      const result = await events.publish({
        roomId: id.data,
        type: input.type,
        data: input.data,
        from,
        dedupKey: input.idempotencyKey ? `${from}|${input.idempotencyKey}` : null,
        requireMember: false,
        budget: null,
        source: 'http',
      });
      return reply.status(result.duplicate ? 200 : 201).send(result);
    });
  };
}

import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HttpAuth } from '../fanout/http.js';
import type { Limits } from '../limits/limits.js';
import { ERROR_RESPONSES, LogEntrySchema, PublishResultSchema } from '../protocol/http-schemas.js';
import { HttpPublish, Incarnation, RoomId, Seq } from '../protocol/schemas.js';
import type { EventService } from './service.js';

const RoomParams = z.object({ id: RoomId });
const HistoryQuery = z.object({
  fromSeq: z.coerce.number().pipe(Seq).default(0),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  incarnation: Incarnation.optional(),
});

/** The event log over HTTP: backends publish (same seq/log path as sockets) and read history. */
export function eventRoutes(events: EventService, limits: Limits) {
  return (app: FastifyInstance, auth: HttpAuth): void => {
    const api = app.withTypeProvider<ZodTypeProvider>();
    api.post(
      '/v1/rooms/:id/events',
      {
        schema: {
          summary: 'Publish an event to a room (201; 200 with duplicate: true for a repeated idempotencyKey)',
          tags: ['events'],
          security: [{ service: [] }],
          params: RoomParams,
          body: HttpPublish,
          response: { 200: PublishResultSchema, 201: PublishResultSchema, ...ERROR_RESPONSES },
        },
      },
      async (req, reply) => {
        const from = await auth.service(req);
        const result = await events.publish({
          roomId: req.params.id,
          type: req.body.type,
          data: req.body.data,
          from,
          dedupKey: req.body.idempotencyKey ? `${from}|${req.body.idempotencyKey}` : null,
          requireMember: false,
          budget: null,
          source: 'http',
        });
        return reply.status(result.duplicate ? 200 : 201).send(result);
      },
    );
    api.get(
      '/v1/rooms/:id/events',
      {
        schema: {
          summary: 'History from the log: the events after fromSeq (a page), with the room incarnation they belong to',
          description: 'recovered: false when the log no longer reaches back to fromSeq + 1 (retention: CATCHUP_MAX_EVENTS, CATCHUP_TTL_MS) or incarnation names another life of the room.',
          tags: ['events'],
          security: [{ service: [] }],
          params: RoomParams,
          querystring: HistoryQuery,
          response: {
            200: z.object({ roomId: z.string(), incarnation: z.string(), seq: z.number(), recovered: z.boolean(), more: z.boolean(), events: z.array(LogEntrySchema) }),
            ...ERROR_RESPONSES,
          },
        },
      },
      async (req) => {
        const caller = await auth.service(req);
        await limits.catchup(req.params.id, caller);
        const { roomId, incarnation, seq, recovered, more, events: entries } = await events.read(req.params.id, req.query.fromSeq, req.query.incarnation, req.query.limit);
        return { roomId, incarnation, seq, recovered, more, events: entries as unknown as z.infer<typeof LogEntrySchema>[] };
      },
    );
  };
}

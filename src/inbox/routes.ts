import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HttpAuth } from '../fanout/http.js';
import { ERROR_RESPONSES } from '../protocol/http-schemas.js';
import { HttpUserMessage } from '../protocol/schemas.js';
import type { InboxService } from './service.js';

/** Same bound as `toUserId` of user:message. */
const UserId = z.string().min(1).max(128);

/** `POST /v1/users/:id/messages`: a backend service writes to a user's inbox. */
export function inboxRoutes(inbox: InboxService) {
  return (app: FastifyInstance, auth: HttpAuth): void => {
    app.withTypeProvider<ZodTypeProvider>().post(
      '/v1/users/:id/messages',
      {
        schema: {
          summary: "Store a direct message in a user's inbox and deliver it to every connected device",
          tags: ['inbox'],
          security: [{ service: [] }],
          params: z.object({ id: UserId }),
          body: HttpUserMessage,
          response: { 201: z.object({ id: z.string() }), ...ERROR_RESPONSES },
        },
      },
      async (req, reply) => {
        const from = await auth.service(req);
        const result = await inbox.send({ toUserId: req.params.id, from, type: req.body.type, data: req.body.data, dedupKey: null });
        return reply.status(201).send({ id: result.id });
      },
    );
  };
}

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { TetherError } from '../protocol/errors.js';
import { HttpUserMessage } from '../protocol/schemas.js';
import type { HttpAuth } from '../fanout/http.js';
import type { InboxService } from './service.js';

/** Same bound as `toUserId` of user:message. */
const UserId = z.string().min(1).max(128);

/** `POST /v1/users/:id/messages`: a backend service writes to a user's inbox. */
export function registerInboxRoutes(app: FastifyInstance, auth: HttpAuth, inbox: InboxService): void {
  app.post('/v1/users/:id/messages', async (req, reply) => {
    const from = await auth.service(req);
    const id = UserId.safeParse((req.params as { id: string }).id);
    if (!id.success) throw new TetherError('NOT_FOUND', 'user id must be 1-128 characters');
    const input = auth.body(HttpUserMessage, req.body);
    const result = await inbox.send({ toUserId: id.data, from, type: input.type, data: input.data, dedupKey: null });
    return reply.status(201).send({ id: result.id });
  });
}

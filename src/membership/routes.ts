import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HttpAuth } from '../fanout/http.js';
import { ERROR_RESPONSES, ParticipantSchema } from '../protocol/http-schemas.js';
import { ClientId, RoomId } from '../protocol/schemas.js';
import type { MembershipService } from './service.js';

const RoomParams = z.object({ id: RoomId });

/** Members over HTTP for backends: who is in a room (with status), kick one, close the room. */
export function membershipRoutes(membership: MembershipService) {
  return (app: FastifyInstance, auth: HttpAuth): void => {
    const api = app.withTypeProvider<ZodTypeProvider>();
    api.get(
      '/v1/rooms/:id/members',
      {
        schema: {
          summary: "A room's members with their status (online, or away inside their grace period)",
          tags: ['members'],
          security: [{ service: [] }],
          params: RoomParams,
          response: { 200: z.object({ roomId: z.string(), seq: z.number(), incarnation: z.string(), members: z.array(ParticipantSchema) }), ...ERROR_RESPONSES },
        },
      },
      async (req) => {
        await auth.service(req);
        return membership.members(req.params.id);
      },
    );
    api.post(
      '/v1/rooms/:id/members/:clientId/kick',
      {
        schema: {
          summary: 'Remove a member now: it gets room:closed (reason kicked), the others room:participant:left (reason kicked)',
          tags: ['members'],
          security: [{ service: [] }],
          params: z.object({ id: RoomId, clientId: ClientId }),
          response: { 200: z.object({ roomId: z.string(), clientId: z.string(), seq: z.number() }), ...ERROR_RESPONSES },
        },
      },
      async (req) => {
        await auth.service(req);
        return membership.kick(req.params.id, req.params.clientId);
      },
    );
    api.delete(
      '/v1/rooms/:id',
      {
        schema: {
          summary: 'Delete a room: every member gets room:closed (reason deleted), every key of the room goes',
          tags: ['rooms'],
          security: [{ service: [] }],
          params: RoomParams,
          response: { 200: z.object({ roomId: z.string(), members: z.number() }), ...ERROR_RESPONSES },
        },
      },
      async (req) => {
        await auth.service(req);
        return membership.close(req.params.id);
      },
    );
  };
}

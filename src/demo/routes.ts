import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HttpAuth } from '../fanout/http.js';
import { ERROR_RESPONSES, RoomInfoSchema } from '../protocol/http-schemas.js';
import { DisplayName } from '../protocol/schemas.js';
import type { RoomService } from '../rooms/service.js';

/**
 * The page's files: src/demo/page (HTML, CSS, plain JS) and the SDK's standalone bundle, both
 * copied next to this module by the build (scripts/copy-assets.mjs).
 */
const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));

/** Demo rooms are for trying Tether out: small, and never more than the server allows. */
const DEMO_MAX_PARTICIPANTS = 50;

// The page is served by the same origin as the socket, so 'self' covers the WebSocket too.
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  // The room code travels in the page's query string: it must not leak to other sites.
  'referrer-policy': 'no-referrer',
};

const DemoRoomCreate = z.object({ name: DisplayName.optional() }).strict();

/**
 * The demo room page at `/` (static files, served by every worker) and, only when
 * `DEMO_ROOMS=true`, `POST /v1/demo/rooms`: a guest creates a small room without a JWT,
 * budgeted per client address like a user's creations. Off, the route does not exist and the page
 * joins existing rooms by code only.
 */
export function demoRoutes(rooms: RoomService, opts: { roomsEnabled: boolean; maxParticipants: number }) {
  return (app: FastifyInstance, auth: HttpAuth): void => {
    void app.register(async (scope) => {
      await scope.register(fastifyStatic, {
        root: PAGE_DIR,
        prefix: '/assets/',
        // One route per file found at start: an unknown /assets/… is the API's JSON 404.
        wildcard: false,
        globIgnore: ['**/index.html'],
        setHeaders: (res) => {
          for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
        },
      });
      scope.get('/', { schema: { hide: true } }, (_req, reply: FastifyReply) => {
        void reply.headers(SECURITY_HEADERS);
        return reply.sendFile('index.html', { maxAge: 0 });
      });
    });
    if (!opts.roomsEnabled) return;
    app.withTypeProvider<ZodTypeProvider>().post(
      '/v1/demo/rooms',
      {
        // Not part of the backend API (and absent unless DEMO_ROOMS=true): kept out of /openapi.json.
        schema: { hide: true, body: DemoRoomCreate, response: { 201: RoomInfoSchema, ...ERROR_RESPONSES } },
      },
      async (req, reply) => {
        const input = auth.body(DemoRoomCreate, req.body);
        const info = await rooms.create(
          { ...(input.name ? { name: input.name } : {}), maxParticipants: Math.min(DEMO_MAX_PARTICIPANTS, opts.maxParticipants) },
          { guestAddress: req.ip },
          'demo',
        );
        return reply.status(201).send(info);
      },
    );
  };
}

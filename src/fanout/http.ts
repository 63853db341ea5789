import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Identity } from '../auth/tokens.js';

/**
 * What a domain's HTTP routes get from the transport: authentication of the caller and validated
 * bodies in the API's error shape. Domains register their routes on the Fastify instance with it.
 */
export interface HttpAuth {
  /** A user JWT (Authorization: Bearer <jwt>), or UNAUTHORIZED. */
  user(req: FastifyRequest): Promise<Identity>;
  /** A backend service: the SERVICE_TOKEN, or a JWT with role "publisher". Returns its name. */
  service(req: FastifyRequest): Promise<string>;
  /** The body, bounded in shape and validated, or INVALID_PAYLOAD. */
  body<S extends z.ZodType>(schema: S, body: unknown): z.output<S>;
}

export type RouteRegistrar = (app: FastifyInstance, auth: HttpAuth) => void;

import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Limits } from '../limits/limits.js';
import type { Duplex } from 'node:stream';
import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config/index.js';
import type { HttpAuth, RouteRegistrar } from '../fanout/http.js';
import type { Logger } from '../observability/logger.js';
import { metrics, registry } from '../observability/metrics.js';
import { ERRORS, TetherError } from '@tether/protocol';
import { assertShape, invalidPayload } from '../protocol/validate.js';
import { secretEquals, verifyJwt } from '../auth/tokens.js';

export interface HttpDeps {
  config: Config;
  /** The package version, for the OpenAPI document. */
  version: string;
  log: Logger;
  limits: Limits;
  isReady(): Promise<{ ready: boolean; reason?: string }>;
  beforeScrape(): Promise<void>;
  /** The domains' HTTP routes, registered on the same instance. */
  routes: RouteRegistrar[];
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7).trim() : null;
}

/**
 * Fastify: the HTTP API, health and metrics; its logger is the worker's pino logger. Created
 * before Socket.IO attaches to its server (Socket.IO wraps the request listeners that exist then);
 * routes are registered once the services exist.
 */
export function createHttp(config: Config, log: Logger): FastifyInstance {
  return Fastify({
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    // Per-request lines would be mostly /metrics scrapes and probes; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.ws.maxPayloadBytes,
    // req.ip (HTTP rate limits) believes X-Forwarded-For only from these proxies.
    trustProxy: config.limits.trustProxy.length > 0 ? [...config.limits.trustProxy] : false,
    // Ids are bounded by their own schemas (user ids: 128 characters, percent-encoded up to 3×);
    // Fastify's default of 100 refused valid ids before any schema saw them.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Errors raised before a route runs answer in the same { error: { code, message } } shape.
    frameworkErrors(err, _req, reply) {
      const code = (err as { code?: string }).code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'URI_TOO_LONG' : 'NOT_FOUND';
      void (reply as FastifyReply).status(ERRORS[code].status).send({ error: new TetherError(code).toBody() });
    },
    clientErrorHandler: answerClientError,
  });
}

const MAX_PARAM_LENGTH = 512;

/**
 * Malformed HTTP, oversized headers, a request that never finished: Node's parser refuses these
 * before any route (or Socket.IO) sees them. Answered in the documented shape, then closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'INVALID_PAYLOAD';
  const body = JSON.stringify({ error: new TetherError(code, code === 'INVALID_PAYLOAD' ? 'malformed HTTP request' : ERRORS[code].message).toBody() });
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${ERRORS[code].status} ${STATUS_CODES[ERRORS[code].status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  } else socket.destroy(err);
}

/**
 * Health, readiness, metrics, the OpenAPI document and every domain's routes. Route schemas are
 * zod (fastify-type-provider-zod): they validate requests, serialize answers, and are what
 * @fastify/swagger publishes at /openapi.json — registered first, so it sees every route.
 */
export async function registerRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  // The API speaks JSON only: a text/plain body is 415, not a string a schema then trips over.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tether HTTP API',
        version: deps.version,
        description: 'Rooms, events, members and direct messages for backends. The realtime protocol (Socket.IO namespace /sync) is in docs/PROTOCOL.md.',
      },
      components: {
        securitySchemes: {
          service: { type: 'http', scheme: 'bearer', description: 'SERVICE_TOKEN, or a JWT with role "publisher"' },
          user: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'a user JWT signed with JWT_SECRET' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });

  const auth: HttpAuth = {
    async user(req) {
      const token = bearer(req);
      if (!token) throw new TetherError('UNAUTHORIZED', 'Authorization: Bearer <JWT> required');
      return verifyJwt(token, deps.config.auth.jwtSecret);
    },
    async service(req) {
      const token = bearer(req);
      if (!token) throw new TetherError('UNAUTHORIZED', 'Authorization: Bearer <service token or publisher JWT> required');
      const serviceToken = deps.config.auth.serviceToken;
      if (serviceToken && secretEquals(token, serviceToken)) return 'service:backend';
      const identity = await verifyJwt(token, deps.config.auth.jwtSecret);
      if (!identity.publisher) throw new TetherError('UNAUTHORIZED', 'JWT lacks role "publisher"');
      return `service:${identity.userId}`;
    },
    body(schema, body) {
      assertShape(body);
      const parsed = schema.safeParse(body ?? {});
      if (!parsed.success) throw invalidPayload(parsed.error);
      return parsed.data;
    },
  };

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply: FastifyReply) => {
    let error: TetherError;
    if (err instanceof TetherError) error = err;
    else if (err.statusCode === 413) error = new TetherError('PAYLOAD_TOO_LARGE', `body larger than ${deps.config.ws.maxPayloadBytes} bytes`);
    else if (err.statusCode === 415) error = new TetherError('UNSUPPORTED_MEDIA_TYPE', err.message);
    else if (hasZodIssues(err)) error = zodFailure(err);
    else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) error = new TetherError('INVALID_PAYLOAD', err.message);
    else {
      req.log.error({ err }, 'request failed');
      error = new TetherError('INTERNAL_ERROR');
    }
    if (error.retryAfterMs !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
    void reply.status(ERRORS[error.code].status).send({ error: error.toBody() });
  });
  // One budget per caller for the whole API, across workers: the credential it presents, else its
  // address. Health, readiness and metrics stay unlimited (probes and scrapes).
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/v1/')) return;
    const credential = req.headers.authorization;
    await deps.limits.http(credential ? `k:${createHash('sha256').update(credential).digest('base64url').slice(0, 22)}` : `a:${req.ip}`);
  });
  app.setNotFoundHandler((_req, reply) => {
    void reply.status(404).send({ error: new TetherError('NOT_FOUND').toBody() });
  });
  // The shape bound runs before schema validation: no recursive validator ever sees 10,000 levels.
  app.addHook('preValidation', async (req) => {
    if (req.body !== undefined) assertShape(req.body);
    if (req.query !== undefined) assertShape(req.query);
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpRequests.inc({ route: req.routeOptions.url ?? 'unmatched', status: `${Math.floor(reply.statusCode / 100)}xx` });
  });

  const api = app.withTypeProvider<ZodTypeProvider>();
  const Health = z.object({ status: z.string(), nodeId: z.string(), reason: z.string().optional() });
  api.get('/healthz', { schema: { summary: 'Liveness: the process runs', tags: ['operations'], response: { 200: Health } } }, async () => ({ status: 'ok', nodeId: deps.config.nodeId }));
  api.get('/readyz', { schema: { summary: 'Readiness: Redis answers and the worker is not draining', tags: ['operations'], response: { 200: Health, 503: Health } } }, async (_req, reply) => {
    const state = await deps.isReady();
    return reply.status(state.ready ? 200 : 503).send({ status: state.ready ? 'ready' : 'not ready', ...(state.reason ? { reason: state.reason } : {}), nodeId: deps.config.nodeId });
  });
  api.get('/metrics', { schema: { summary: 'Prometheus metrics of this worker (text exposition format)', tags: ['operations'] } }, async (_req, reply) => {
    await deps.beforeScrape().catch((err: unknown) => deps.log.warn({ err }, 'queue depth sampling failed'));
    return reply.header('content-type', registry.contentType).send(await registry.metrics());
  });
  api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  for (const register of deps.routes) register(app, auth);
}

type ZodIssueError = Error & { validation: { instancePath?: string; message?: string; params?: { issue?: { path?: PropertyKey[] } } }[] };
function hasZodIssues(err: unknown): err is ZodIssueError {
  return Array.isArray((err as { validation?: unknown }).validation);
}
/** A schema refusal as INVALID_PAYLOAD with field-level details, like socket requests. */
function zodFailure(err: ZodIssueError): TetherError {
  const details = err.validation.slice(0, 10).map((v) => ({ path: v.instancePath?.replace(/^\//, '').replaceAll('/', '.') || '(root)', message: v.message ?? 'invalid' }));
  return new TetherError('INVALID_PAYLOAD', `invalid payload: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
}

import { z } from 'zod';
import { ERROR_CODES } from '@tether/protocol';

/**
 * Response shapes of the HTTP API, as zod schemas: Fastify serializes every answer through them
 * and @fastify/swagger publishes them at /openapi.json, so the documented shape and the sent one
 * cannot drift apart. (Request shapes are the schemas in schemas.ts.)
 */
export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES as [string, ...string[]]),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
      retryAfterMs: z.number().optional(),
    }),
  })
  .describe('Every error: the code from the catalogue (docs/PROTOCOL.md) and a message');

export const RoomInfoSchema = z.object({
  id: z.string(),
  code: z.string().nullable(),
  name: z.string(),
  kind: z.enum(['room', 'program']),
  maxParticipants: z.number(),
  hasPassword: z.boolean(),
  createdAt: z.number(),
  hostClientId: z.string().nullable(),
});

export const ParticipantSchema = z.object({
  clientId: z.string(),
  userId: z.string().nullable(),
  name: z.string(),
  role: z.enum(['host', 'member']),
  status: z.enum(['online', 'away']),
  canControl: z.boolean(),
  joinedAt: z.number(),
});

export const LogEntrySchema = z.object({
  seq: z.number(),
  name: z.string().describe('the event name it was broadcast under (room:event, room:participant:joined, …)'),
  ts: z.number(),
  payload: z.record(z.string(), z.unknown()).describe('exactly as broadcast under `name`'),
});

export const PublishResultSchema = z.object({ seq: z.number(), duplicate: z.boolean() });

/** Answers of every error status a route may produce. */
export const ERROR_RESPONSES = { '4xx': ErrorResponse, '5xx': ErrorResponse } as const;

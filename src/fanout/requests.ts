import type { z } from 'zod';
import type { Ack, ClientToServerEvents } from '@tether/protocol';
import type { Conn } from './port.js';

/**
 * How domains declare the socket requests they serve: event, payload schema, and what it does for
 * a connection. The transport's router dispatches them (bounds, validation, one answer each).
 */
export type RequestName = keyof ClientToServerEvents;
export type AckData<E extends RequestName> = Parameters<ClientToServerEvents[E]>[1] extends (r: Ack<infer T>) => void ? T : never;

export interface RequestDef {
  event: RequestName;
  schema: z.ZodType;
  /** `acked`: the client sent an ack callback (success is answered there; without one only failures are answered, as room:error). */
  run(conn: Conn, input: unknown, acked: boolean): Promise<unknown>;
}

/** Declares a request; `run` gets the validated payload and returns the ack data. */
export function request<E extends RequestName, S extends z.ZodType>(
  event: E,
  schema: S,
  run: (conn: Conn, input: z.output<S>, acked: boolean) => Promise<AckData<E>>,
): RequestDef {
  return { event, schema, run: run as RequestDef['run'] };
}

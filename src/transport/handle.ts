import type { z } from 'zod';
import type { Ack, ClientToServerEvents } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { TetherSocket } from './types.js';

type AckData<E extends keyof ClientToServerEvents> = Parameters<ClientToServerEvents[E]>[1] extends (r: Ack<infer T>) => void ? T : never;

/** Turns a zod failure into INVALID_PAYLOAD with field-level details. */
export function invalidPayload(error: z.ZodError): TetherError {
  const details = error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
  return new TetherError('INVALID_PAYLOAD', `invalid payload: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
}

/**
 * Registers one client→server request. Every request is validated against its schema, refused
 * on a replaced socket, and answered exactly once with `{ ok, data }` or `{ ok: false, error }`;
 * failures are also emitted as `room:error` (the contract older clients expect). A bug becomes
 * INTERNAL_ERROR for the client and a log line here, never a crashed worker.
 */
export function handle<E extends keyof ClientToServerEvents, S extends z.ZodType>(
  socket: TetherSocket,
  log: Logger,
  event: E,
  schema: S,
  fn: (payload: z.output<S>) => Promise<AckData<E>>,
): void {
  (socket.on as (ev: string, listener: (...args: unknown[]) => void) => void)(event, (...args: unknown[]) => {
    const maybeAck = args[args.length - 1];
    const ack = typeof maybeAck === 'function' ? (maybeAck as (r: Ack<AckData<E>>) => void) : undefined;
    const payload = ack ? args.slice(0, -1)[0] : args[0];
    const fail = (err: unknown) => {
      let error: TetherError;
      if (err instanceof TetherError) error = err;
      else {
        log.error({ event, clientId: socket.data.clientId, err }, 'request failed');
        error = new TetherError('INTERNAL_ERROR');
      }
      metrics.requestErrors.inc({ code: error.code });
      socket.emit('room:error', error.toBody());
      ack?.({ ok: false, error: error.toBody() });
    };
    if (socket.data.replaced) return fail(new TetherError('SESSION_REPLACED'));
    const parsed = schema.safeParse(payload ?? {});
    if (!parsed.success) return fail(invalidPayload(parsed.error));
    fn(parsed.data).then((data) => ack?.({ ok: true, data }), fail);
  });
}

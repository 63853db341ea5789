import type { z } from 'zod';
import type { Ack, ClientToServerEvents } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { TetherSocket } from './types.js';

type EventName = keyof ClientToServerEvents;
type AckData<E extends EventName> = Parameters<ClientToServerEvents[E]>[1] extends (r: Ack<infer T>) => void ? T : never;

/** One client→server request kind: its event, payload schema, and what it does for a socket. */
export interface RequestDef {
  event: EventName;
  schema: z.ZodType;
  run(socket: TetherSocket, input: unknown): Promise<unknown>;
}

/** Declares a request; `run` gets the validated payload and returns the ack data. */
export function request<E extends EventName, S extends z.ZodType>(
  event: E,
  schema: S,
  run: (socket: TetherSocket, input: z.output<S>) => Promise<AckData<E>>,
): RequestDef {
  return { event, schema, run: run as RequestDef['run'] };
}

/** Turns a zod failure into INVALID_PAYLOAD with field-level details. */
export function invalidPayload(error: z.ZodError): TetherError {
  const details = error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
  return new TetherError('INVALID_PAYLOAD', `invalid payload: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
}

/**
 * Dispatches every client→server request. Each request is validated against its schema, refused
 * on a replaced socket, and answered exactly once with `{ ok, data }` or `{ ok: false, error }`;
 * failures are also emitted as `room:error` (the contract older clients expect). A bug becomes
 * INTERNAL_ERROR for the client and a log line, never a crashed worker.
 *
 * One listener, built once per worker, serves every socket: Socket.IO calls `onAny` listeners
 * with the socket as `this` and the event name first. Per-socket closures (or one registered
 * listener per event and socket) would cost kilobytes per idle connection.
 */
export class RequestRouter {
  private readonly listener: (this: TetherSocket, event: string, ...args: unknown[]) => void;

  constructor(
    private readonly log: Logger,
    defs: RequestDef[],
  ) {
    const byEvent = new Map<string, RequestDef>(defs.map((d) => [d.event, d]));
    if (byEvent.size !== defs.length) throw new Error('two request definitions for one event');
    const router = this;
    this.listener = function (this: TetherSocket, event: string, ...args: unknown[]) {
      const def = byEvent.get(event);
      if (def) router.dispatch(this, def, args);
    };
  }

  attach(socket: TetherSocket): void {
    socket.onAny(this.listener);
  }

  private dispatch(socket: TetherSocket, def: RequestDef, args: unknown[]): void {
    const last = args[args.length - 1];
    const ack = typeof last === 'function' ? (last as (r: Ack<unknown>) => void) : undefined;
    const payload = ack ? args.slice(0, -1)[0] : args[0];
    const fail = (err: unknown) => {
      let error: TetherError;
      if (err instanceof TetherError) error = err;
      else {
        this.log.error({ event: def.event, clientId: socket.data.clientId, err }, 'request failed');
        error = new TetherError('INTERNAL_ERROR');
      }
      metrics.requestErrors.inc({ code: error.code });
      socket.emit('room:error', error.toBody());
      ack?.({ ok: false, error: error.toBody() });
    };
    if (socket.data.replaced) return fail(new TetherError('SESSION_REPLACED'));
    const parsed = def.schema.safeParse(payload ?? {});
    if (!parsed.success) return fail(invalidPayload(parsed.error));
    def.run(socket, parsed.data).then((data) => ack?.({ ok: true, data }), fail);
  }
}

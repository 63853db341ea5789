import type { z } from 'zod';
import type { Ack, ClientToServerEvents } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { checkShape } from '../protocol/shape.js';
import type { TetherSocket } from './types.js';

type EventName = keyof ClientToServerEvents;
type AckData<E extends EventName> = Parameters<ClientToServerEvents[E]>[1] extends (r: Ack<infer T>) => void ? T : never;

/** One client→server request kind: its event, payload schema, and what it does for a socket. */
export interface RequestDef {
  event: EventName;
  schema: z.ZodType;
  /** `acked`: the client sent an ack callback (the answer goes there; without one, only failures are answered, as room:error). */
  run(socket: TetherSocket, input: unknown, acked: boolean): Promise<unknown>;
}

/** Declares a request; `run` gets the validated payload and returns the ack data. */
export function request<E extends EventName, S extends z.ZodType>(
  event: E,
  schema: S,
  run: (socket: TetherSocket, input: z.output<S>, acked: boolean) => Promise<AckData<E>>,
): RequestDef {
  return { event, schema, run: run as RequestDef['run'] };
}

/** Refuses a payload nested too deep (or carrying `__proto__` keys) before any recursive code sees it. */
export function assertShape(payload: unknown): void {
  const problem = checkShape(payload);
  if (problem) throw new TetherError('INVALID_PAYLOAD', `invalid payload: ${problem.path}: ${problem.message}`, [problem]);
}

/** Turns a zod failure into INVALID_PAYLOAD with field-level details. */
export function invalidPayload(error: z.ZodError): TetherError {
  const details = error.issues.slice(0, 10).map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
  return new TetherError('INVALID_PAYLOAD', `invalid payload: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
}

/**
 * Dispatches every client→server request. Each request is bounded in shape, validated against its
 * schema, refused on a replaced socket, and answered exactly once: on its ack with `{ ok, data }` /
 * `{ ok: false, error }`, or — a failure of a request sent without an ack — as `room:error`. Never
 * both: a flooder must not get two answers per frame. Anything a handler throws, synchronously or
 * not, becomes INTERNAL_ERROR for the client and a log line, never a crashed worker.
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
      router.dispatch(this, event, byEvent.get(event), args);
    };
  }

  attach(socket: TetherSocket): void {
    socket.onAny(this.listener);
  }

  private dispatch(socket: TetherSocket, event: string, def: RequestDef | undefined, args: unknown[]): void {
    const last = args[args.length - 1];
    const ack = typeof last === 'function' ? (last as (r: Ack<unknown>) => void) : undefined;
    const payload = ack ? args.slice(0, -1)[0] : args[0];
    const fail = (err: unknown) => {
      let error: TetherError;
      if (err instanceof TetherError) error = err;
      else {
        this.log.error({ event: def?.event ?? 'unknown', clientId: socket.data.clientId, err }, 'request failed');
        error = new TetherError('INTERNAL_ERROR');
      }
      metrics.requestErrors.inc({ code: error.code });
      try {
        if (ack) ack({ ok: false, error: error.toBody() });
        else socket.emit('room:error', error.toBody());
      } catch (emitErr) {
        this.log.error({ clientId: socket.data.clientId, err: emitErr }, 'could not answer a request');
      }
    };
    try {
      if (!def) return fail(new TetherError('UNKNOWN_EVENT', `no request named ${JSON.stringify(String(event).slice(0, 64))}`));
      if (socket.data.replaced) return fail(new TetherError('SESSION_REPLACED'));
      assertShape(payload);
      const parsed = def.schema.safeParse(payload ?? {});
      if (!parsed.success) return fail(invalidPayload(parsed.error));
      def.run(socket, parsed.data, ack !== undefined)
        .then((data) => ack?.({ ok: true, data }), fail)
        .catch((err: unknown) => this.log.error({ event, clientId: socket.data.clientId, err }, 'could not answer a request'));
    } catch (err) {
      fail(err);
    }
  }
}

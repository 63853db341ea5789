import type { RequestDef } from '../fanout/requests.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { Ack } from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import { assertShape, invalidPayload } from '../protocol/validate.js';
import type { SocketIoFanout } from './fanout.js';
import type { TetherSocket } from './types.js';

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
 *
 * The sockets share its listener list too. `socket.onAny()` gives each socket an array of its own,
 * and V8 makes room for 16 entries at its first push: about 180 B per idle connection for one
 * pointer. Socket.IO only reads the list (it copies it before each event), so every socket gets the
 * same frozen one. The cost: nothing may call onAny/offAny on these sockets (on a frozen list that
 * throws instead of touching the others). test/unit/router.test.ts checks both through Socket.IO's
 * public `listenersAny()`, so a Socket.IO that renames the field fails there.
 */
export class RequestRouter {
  /** The one listener, in the one list every socket shares. */
  private readonly listeners: readonly ((this: TetherSocket, event: string, ...args: unknown[]) => void)[];

  constructor(
    private readonly log: Logger,
    private readonly fanout: SocketIoFanout,
    defs: RequestDef[],
  ) {
    const byEvent = new Map<string, RequestDef>(defs.map((d) => [d.event, d]));
    if (byEvent.size !== defs.length) throw new Error('two request definitions for one event');
    const router = this;
    this.listeners = Object.freeze([
      function (this: TetherSocket, event: string, ...args: unknown[]) {
        router.dispatch(this, event, byEvent.get(event), args);
      },
    ]);
  }

  attach(socket: TetherSocket): void {
    (socket as unknown as { _anyListeners?: readonly unknown[] })._anyListeners = this.listeners;
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
      def.run(this.fanout.conn(socket), parsed.data, ack !== undefined)
        .then((data) => ack?.({ ok: true, data }), fail)
        .catch((err: unknown) => this.log.error({ event, clientId: socket.data.clientId, err }, 'could not answer a request'));
    } catch (err) {
      fail(err);
    }
  }
}

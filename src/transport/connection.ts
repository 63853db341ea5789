import type { ExtendedError } from 'socket.io';
import type { Conn, ConnData } from '../fanout/port.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { TetherError } from '@tether/protocol';
import type { SocketIoFanout } from './fanout.js';
import type { RequestRouter } from './router.js';
import type { TetherNamespace, TetherSocket } from './types.js';

/**
 * What the transport needs from the domains around a connection's life — supplied by the
 * composition root, so this file names none of them.
 */
export interface ConnectionHooks<H> {
  /** The handshake: turns `auth` into the connection's data, or throws a TetherError to refuse. */
  authenticate(auth: unknown, conn: { id: string; address: string }): Promise<{ data: ConnData; handshake: H }>;
  /** After the namespace connect, in order (the session announcement, program rooms, the inbox…). */
  onConnected: ((conn: Conn, handshake: H) => Promise<void>)[];
  /** When the connection is gone; tracked so that a clean stop waits for them. */
  onDisconnected: ((conn: Conn, reason: string) => Promise<void>)[];
  track<T>(work: Promise<T>): Promise<T>;
  isDraining(): boolean;
  /** The worker instance connections are indexed under now (a connection of an older one was fenced). */
  nodeInstance(): string;
}

function refuse(err: TetherError): ExtendedError {
  metrics.connectionsRejected.inc({ code: err.code });
  const e = new Error(err.message) as ExtendedError;
  e.data = err.toBody();
  return e;
}

const RELEASED = Object.freeze({}) as Record<string, never>;

/**
 * What the handshake middleware read is not read again — the upgrade request (its headers, parser
 * and socket state), the handshake's auth (a JWT, a session token), its query, URL and date
 * string: released, an idle connection keeps only what it uses (Socket.IO's own memory advice;
 * about 1.5 KB per connection measured). The address limits need later was kept in the
 * connection's data.
 */
function releaseHandshake(socket: TetherSocket): void {
  (socket.conn as unknown as { request: unknown }).request = null;
  const h = socket.handshake;
  h.headers = RELEASED;
  h.auth = RELEASED;
  h.query = RELEASED;
  h.url = '';
  h.time = '';
}

/** Handshake middleware, connection and disconnect handling of namespace /sync. */
export function installConnections<H>(nsp: TetherNamespace, fanout: SocketIoFanout, requests: RequestRouter, hooks: ConnectionHooks<H>, log: Logger): void {
  const handshakes = new WeakMap<TetherSocket, H>();

  nsp.use((socket, next) => {
    const conn = fanout.conn(socket);
    hooks.authenticate(socket.handshake.auth, { id: socket.id, address: conn.address }).then(
      ({ data, handshake }) => {
        socket.data = data;
        handshakes.set(socket, handshake);
        next();
      },
      (err: unknown) => {
        if (err instanceof TetherError) return next(refuse(err));
        log.error({ err }, 'handshake failed');
        next(refuse(new TetherError('INTERNAL_ERROR')));
      },
    );
  });

  // Shared by every socket (called with the socket as `this`): no per-socket closure.
  function onDisconnect(this: TetherSocket, reason: string): void {
    const socket = this;
    metrics.connectedClients.dec();
    metrics.disconnections.inc({ reason });
    metrics.connectionDuration.observe((Date.now() - socket.data.connectedAt) / 1000);
    const conn = fanout.conn(socket);
    for (const hook of hooks.onDisconnected) {
      hooks.track(hook(conn, reason)).catch((err: unknown) => log.error({ err, clientId: socket.data.clientId, reason }, 'disconnect handling failed'));
    }
  }

  nsp.on('connection', (socket) => {
    const handshake = handshakes.get(socket)!;
    handshakes.delete(socket);
    releaseHandshake(socket);
    metrics.connectedClients.inc();
    // Handlers first, synchronously: a client may send a request right after `connect`.
    requests.attach(socket);
    socket.on('disconnect', onDisconnect);
    if (hooks.isDraining()) {
      // Refusing in the middleware would strand the client (socket.io-client does not retry a
      // refused handshake); closing the transport makes it reconnect, to another worker.
      socket.emit('server:shutdown', { reconnectAfterMs: 0 });
      socket.conn.close();
    } else if (socket.data.nodeInstance !== hooks.nodeInstance()) {
      // Its handshake was indexed under an instance this worker fenced meanwhile.
      socket.conn.close();
    }
    const conn = fanout.conn(socket);
    (async () => {
      for (const hook of hooks.onConnected) await hook(conn, handshake);
    })().catch((err: unknown) => log.error({ err, clientId: socket.data.clientId }, 'connection setup failed'));
  });
}

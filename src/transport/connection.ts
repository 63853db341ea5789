import type { IncomingMessage } from 'node:http';
import type { ExtendedError } from 'socket.io';
import type { Limits } from '../limits/limits.js';
import type { z } from 'zod';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { socketRoom, userRoom } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import { HandshakeAuth } from '../protocol/schemas.js';
import type { RoomService } from '../rooms/service.js';
import type { SessionService } from '../sessions/service.js';
import { verifyJwt, type Identity } from '../sessions/tokens.js';
import { assertShape, invalidPayload, type RequestRouter } from './handle.js';
import type { TetherNamespace, TetherSocket } from './types.js';

export interface ConnectionDeps {
  config: Config;
  log: Logger;
  rooms: RoomService;
  sessions: SessionService;
  requests: RequestRouter;
  limits: Limits;
  /** The client address of a handshake request (TRUST_PROXY-aware). */
  addressOf(req: IncomingMessage): string;
  isDraining(): boolean;
  /** The worker instance sockets are indexed under now (a socket of an older one was fenced). */
  nodeInstance(): string;
  /** Work to do once a socket is connected (e.g. deliver the inbox). */
  onConnected: ((socket: TetherSocket) => Promise<void>)[];
  /** Work to do when a socket is gone, besides the session's own (e.g. inbox device tracking). */
  onDisconnected: ((socket: TetherSocket) => Promise<void>)[];
}

type HandshakeAuthOutput = z.output<typeof HandshakeAuth>;

/** What the handshake learned that only the connection handler needs (then dropped). */
interface Handshake {
  identity: Identity | null;
  sessionToken?: string;
  auth: HandshakeAuthOutput;
}

function refuse(err: TetherError): ExtendedError {
  metrics.connectionsRejected.inc({ code: err.code });
  const e = new Error(err.message) as ExtendedError;
  e.data = err.toBody();
  return e;
}

/** Handshake: validates auth, verifies the JWT, binds the socket to its clientId session. */
export function installMiddleware(nsp: TetherNamespace, deps: ConnectionDeps): void {
  const { log } = deps;
  const handshakes = new WeakMap<TetherSocket, Handshake>();

  nsp.use((socket, next) => {
    (async () => {
      assertShape(socket.handshake.auth);
      const parsed = HandshakeAuth.safeParse(socket.handshake.auth ?? {});
      if (!parsed.success) throw invalidPayload(parsed.error);
      const auth = parsed.data;
      // Only handshakes that create a session count: reconnects present their session token, and
      // a storm of them after a deploy (a whole office behind one NAT) must get through.
      if (!auth.sessionToken) await deps.limits.newSession(deps.addressOf(socket.request));
      const identity = auth.token ? await verifyJwt(auth.token, deps.config.auth.jwtSecret) : null;
      if (!identity && !deps.config.auth.allowGuests) throw new TetherError('UNAUTHORIZED', 'guests are not allowed; connect with a JWT');
      const session = await deps.sessions.connect(socket, auth, identity?.userId ?? null);
      socket.data = {
        clientId: session.clientId,
        userId: identity?.userId ?? null,
        name: identity?.name ?? `guest-${session.clientId.slice(0, 6)}`,
        epoch: session.epoch,
        nodeInstance: session.nodeInstance,
        connectedAt: Date.now(),
        roomId: null,
        programRooms: identity?.rooms ?? [],
        replaced: false,
      };
      handshakes.set(socket, { identity, ...(session.sessionToken ? { sessionToken: session.sessionToken } : {}), auth });
    })().then(
      () => next(),
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
    const { clientId } = socket.data;
    // Tracked: a clean stop waits for these before it removes this worker's node index.
    deps.sessions.track(deps.sessions.disconnect(socket, reason)).catch((err: unknown) => log.error({ err, clientId, reason }, 'disconnect handling failed'));
    for (const hook of deps.onDisconnected) deps.sessions.track(hook(socket)).catch((err: unknown) => log.error({ err, clientId }, 'disconnect hook failed'));
  }

  nsp.on('connection', (socket) => {
    const { identity, sessionToken, auth } = handshakes.get(socket)!;
    handshakes.delete(socket);
    metrics.connectedClients.inc();

    // Handlers first, synchronously: a client may send a request right after `connect`.
    deps.requests.attach(socket);
    socket.on('disconnect', onDisconnect);
    if (deps.isDraining()) {
      // Refusing in the middleware would strand the client (socket.io-client does not retry a
      // refused handshake); closing the transport makes it reconnect, to another worker.
      socket.emit('server:shutdown', { reconnectAfterMs: 0 });
      socket.conn.close();
    } else if (socket.data.nodeInstance !== deps.nodeInstance()) {
      // Its handshake was indexed under an instance this worker fenced meanwhile.
      socket.conn.close();
    }

    (async () => {
      const programRooms = socket.data.programRooms;
      socket.emit('session', {
        clientId: socket.data.clientId,
        userId: socket.data.userId,
        ...(sessionToken ? { sessionToken } : {}),
        epoch: socket.data.epoch,
        nodeId: deps.config.nodeId,
        serverTime: Date.now(),
        programRooms,
      });
      if (identity) await socket.join(userRoom(identity.userId));
      // Program rooms come from the JWT presented now, so a revoked room is simply not rejoined.
      for (const roomId of programRooms) {
        await deps.rooms.ensureProgramRoom(roomId);
        const lastSeq = auth.lastSeq?.[roomId];
        if (lastSeq !== undefined) {
          const { result } = await deps.sessions.rejoin(socket, roomId, { lastSeq, incarnation: auth.incarnations?.[roomId] });
          socket.emit('room:rejoined', result);
        } else {
          await socket.join(socketRoom(roomId));
        }
      }
      if (auth.roomId && !programRooms.includes(auth.roomId)) {
        try {
          const { result } = await deps.sessions.rejoin(socket, auth.roomId, { lastSeq: auth.lastSeq?.[auth.roomId], incarnation: auth.incarnations?.[auth.roomId] });
          socket.emit('room:rejoined', result);
        } catch (err) {
          if (!(err instanceof TetherError)) throw err;
          socket.emit('room:error', err.toBody());
        }
      }
      for (const hook of deps.onConnected) await hook(socket);
    })().catch((err: unknown) => log.error({ err, clientId: socket.data.clientId }, 'connection setup failed'));
  });
}

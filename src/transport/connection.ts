import type { ExtendedError } from 'socket.io';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { socketRoom, userRoom } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import { HandshakeAuth } from '../protocol/schemas.js';
import type { CatchupService } from '../catchup/service.js';
import { registerEventHandlers } from '../events/handlers.js';
import type { EventService } from '../events/service.js';
import { registerRoomHandlers } from '../rooms/handlers.js';
import type { RoomService } from '../rooms/service.js';
import { registerSessionHandlers } from '../sessions/handlers.js';
import type { SessionService } from '../sessions/service.js';
import { verifyJwt, type Identity } from '../sessions/tokens.js';
import { invalidPayload } from './handle.js';
import type { TetherNamespace, TetherSocket } from './types.js';

export interface ConnectionDeps {
  config: Config;
  log: Logger;
  rooms: RoomService;
  sessions: SessionService;
  events: EventService;
  catchup: CatchupService;
  isDraining(): boolean;
  /** Extra per-socket handlers of other domains (playback, inbox), registered with the rest. */
  extraHandlers: ((socket: TetherSocket) => void)[];
  /** Work to do once a socket is connected (e.g. deliver the inbox). */
  onConnected: ((socket: TetherSocket) => Promise<void>)[];
}

function refuse(err: TetherError): ExtendedError {
  metrics.connectionsRejected.inc({ code: err.code });
  const e = new Error(err.message) as ExtendedError;
  e.data = err.toBody();
  return e;
}

/** Handshake: validates auth, verifies the JWT, binds the socket to its clientId session. */
export function installMiddleware(nsp: TetherNamespace, deps: ConnectionDeps): void {
  const identities = new WeakMap<TetherSocket, { identity: Identity | null; sessionToken?: string; auth: ReturnType<typeof HandshakeAuth.parse> }>();

  nsp.use((socket, next) => {
    (async () => {
      const parsed = HandshakeAuth.safeParse(socket.handshake.auth ?? {});
      if (!parsed.success) throw invalidPayload(parsed.error);
      const auth = parsed.data;
      const identity = auth.token ? await verifyJwt(auth.token, deps.config.auth.jwtSecret) : null;
      if (!identity && !deps.config.auth.allowGuests) throw new TetherError('UNAUTHORIZED', 'guests are not allowed; connect with a JWT');
      const session = await deps.sessions.connect(socket, auth, identity?.userId ?? null);
      socket.data = {
        clientId: session.clientId,
        userId: identity?.userId ?? null,
        name: identity?.name ?? `guest-${session.clientId.slice(0, 6)}`,
        epoch: session.epoch,
        connectedAt: Date.now(),
        roomId: null,
        programRooms: identity?.rooms ?? [],
        replaced: false,
      };
      identities.set(socket, { identity, ...(session.sessionToken ? { sessionToken: session.sessionToken } : {}), auth });
    })().then(
      () => next(),
      (err: unknown) => {
        if (err instanceof TetherError) return next(refuse(err));
        deps.log.error({ err }, 'handshake failed');
        next(refuse(new TetherError('INTERNAL_ERROR')));
      },
    );
  });

  nsp.on('connection', (socket) => {
    const log = deps.log.child({ clientId: socket.data.clientId });
    const { identity, sessionToken, auth } = identities.get(socket)!;
    metrics.connectedClients.inc();
    if (deps.isDraining()) {
      // Refusing in the middleware would strand the client (socket.io-client does not retry a
      // refused handshake); closing the transport makes it reconnect, to another worker.
      socket.emit('server:shutdown', { reconnectAfterMs: 0 });
      socket.conn.close();
    }

    // Handlers first, synchronously: a client may send a request right after `connect`.
    registerRoomHandlers(socket, deps.rooms, deps.sessions, log);
    registerSessionHandlers(socket, deps.sessions, log);
    registerEventHandlers(socket, deps.config, deps.events, deps.catchup, log);
    for (const register of deps.extraHandlers) register(socket);

    socket.on('disconnect', (reason) => {
      metrics.connectedClients.dec();
      metrics.disconnections.inc({ reason });
      metrics.connectionDuration.observe((Date.now() - socket.data.connectedAt) / 1000);
      deps.sessions.disconnect(socket, reason).catch((err: unknown) => log.error({ err, reason }, 'disconnect handling failed'));
    });

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
          const { result } = await deps.sessions.rejoin(socket, roomId, lastSeq);
          socket.emit('room:rejoined', result);
        } else {
          await socket.join(socketRoom(roomId));
        }
      }
      if (auth.roomId && !programRooms.includes(auth.roomId)) {
        try {
          const { result } = await deps.sessions.rejoin(socket, auth.roomId, auth.lastSeq?.[auth.roomId]);
          socket.emit('room:rejoined', result);
        } catch (err) {
          if (!(err instanceof TetherError)) throw err;
          socket.emit('room:error', err.toBody());
        }
      }
      for (const hook of deps.onConnected) await hook(socket);
    })().catch((err: unknown) => log.error({ err }, 'connection setup failed'));
  });
}

import { randomUUID } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Conn, ConnData, Fanout } from '../fanout/port.js';
import type { Limits } from '../limits/limits.js';
import { metrics } from '../observability/metrics.js';
import { HandshakeAuth } from '../protocol/schemas.js';
import { SERVER_FEATURES, TetherError } from '@tether/protocol';
import { assertShape, invalidPayload } from '../protocol/validate.js';
import type { SessionStore } from './store.js';
import { hashSessionToken, issueSessionToken, verifyJwt, type Identity } from '../auth/tokens.js';

/** Which worker process instance new connections belong to (changes when the worker fences itself). */
export interface NodeInstance {
  readonly instance: string;
}

/** What a handshake established: the connection's data, and what only the connect hooks need. */
export interface Authenticated {
  data: ConnData;
  identity: Identity | null;
  /** Only on the connect that created the session. */
  sessionToken?: string;
  intent: { roomId?: string | undefined; lastSeq?: Record<string, number> | undefined; incarnations?: Record<string, string> | undefined };
}

/**
 * Sessions: clientId identity across reconnects and workers. Redis holds the connection map
 * (clientId → socketId, node instance, userId, roomId, epoch); every (re)connect bumps the epoch,
 * and everything scheduled under an older epoch becomes a no-op.
 */
export class SessionService {
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly config: Config,
    private readonly store: SessionStore,
    private readonly fanout: Fanout,
    private readonly node: NodeInstance,
    private readonly limits: Limits,
  ) {}

  /**
   * The handshake: bounds and validates `auth`, takes a new-session budget when no session token
   * is presented, verifies the JWT, and binds the connection to its clientId session. A known
   * clientId needs its session token (or another user's JWT is refused). If the clientId still has
   * a live connection anywhere, that one is told session:replaced and closed after
   * TAKEOVER_GRACE_MS by the worker that holds it.
   */
  async authenticate(rawAuth: unknown, conn: { id: string; address: string }): Promise<Authenticated> {
    assertShape(rawAuth);
    const parsed = HandshakeAuth.safeParse(rawAuth ?? {});
    if (!parsed.success) throw invalidPayload(parsed.error);
    const auth = parsed.data;
    // Only handshakes that create a session count: reconnects present their session token, and
    // a storm of them after a deploy (a whole office behind one NAT) must get through.
    if (!auth.sessionToken) await this.limits.newSession(conn.address);
    const identity = auth.token ? await verifyJwt(auth.token, this.config.auth.jwtSecret) : null;
    if (!identity && !this.config.auth.allowGuests) throw new TetherError('UNAUTHORIZED', 'guests are not allowed; connect with a JWT');

    const clientId = auth.clientId ?? randomUUID();
    const fresh = issueSessionToken();
    const nodeInstance = this.node.instance;
    const session = await this.store.connect({
      clientId,
      presentedTokenHash: auth.sessionToken ? hashSessionToken(auth.sessionToken) : null,
      newTokenHash: fresh.hash,
      userId: identity?.userId ?? null,
      socketId: conn.id,
      nodeInstance,
    });
    if (session.previous.status === 'connected' && session.previous.socketId && session.previous.socketId !== conn.id) {
      metrics.takeovers.inc();
      this.fanout.replace(session.previous.socketId, clientId, session.epoch, this.config.sessions.takeoverGraceMs);
    }
    metrics.connections.inc({ kind: session.issued ? 'new' : 'reconnect' });
    return {
      data: {
        clientId,
        userId: identity?.userId ?? null,
        name: identity?.name ?? `guest-${clientId.slice(0, 6)}`,
        epoch: session.epoch,
        nodeInstance,
        connectedAt: Date.now(),
        roomId: session.roomId,
        programRooms: identity?.rooms ?? [],
        replaced: false,
        address: conn.address,
      },
      identity,
      ...(session.issued ? { sessionToken: fresh.token } : {}),
      intent: { roomId: auth.roomId, lastSeq: auth.lastSeq, incarnations: auth.incarnations },
    };
  }

  /**
   * First connection hook: the client learns its session (and, once, its token); an
   * authenticated connection joins its user's stream (direct messages to every device).
   */
  async announce(conn: Conn, auth: Authenticated): Promise<void> {
    conn.emit('session', {
      clientId: conn.data.clientId,
      userId: conn.data.userId,
      ...(auth.sessionToken ? { sessionToken: auth.sessionToken } : {}),
      epoch: conn.data.epoch,
      nodeId: this.config.nodeId,
      serverTime: Date.now(),
      programRooms: conn.data.programRooms,
      features: [...SERVER_FEATURES],
    });
    if (conn.data.userId) await conn.joinUser(conn.data.userId);
  }

  /** Last step of a disconnect: until it is fully recorded, the connection stays in its instance's index, so the reaper can finish it. */
  async unindex(data: ConnData): Promise<void> {
    await this.store.unindex(data.nodeInstance, data.clientId, data.epoch);
  }

  /** Runs disconnect work that a clean stop must wait for (see settle()). */
  track<T>(work: Promise<T>): Promise<T> {
    this.inflight.add(work);
    void work.finally(() => this.inflight.delete(work)).catch(() => undefined);
    return work;
  }

  /** Waits until every tracked disconnect has been recorded, or the deadline passed. Returns how many are left. */
  async settle(deadline: number): Promise<number> {
    while (this.inflight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    }
    return this.inflight.size;
  }
}

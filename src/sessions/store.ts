import type { Config } from '../config/index.js';
import type { RedisCommands } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';

export interface SessionConnected {
  epoch: number;
  /** A session was created: the caller hands out its new token. */
  issued: boolean;
  previous: { socketId: string; nodeId: string; status: string };
  /** The code-joined room the session names, if any. */
  roomId: string | null;
}

export type ClaimResult = { claimed: true; alreadyThisRoom: boolean } | { claimed: false; otherRoomId: string; claimedAt: number };

/**
 * The connection map (clientId → tokenHash, socketId, node instance, epoch, roomId) and the node
 * indexes, over their scripts: named arguments in, typed results out.
 */
export class SessionStore {
  constructor(
    private readonly config: Config,
    private readonly redis: RedisCommands,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
  ) {}

  /**
   * A (re)connect: checks the token, bumps the epoch and records the socket in its worker
   * instance's index (in the same script, except on a Redis Cluster: see sessionConnect.lua).
   * Throws SESSION_INVALID / UNAUTHORIZED.
   */
  async connect(a: { clientId: string; presentedTokenHash: string | null; newTokenHash: string; userId: string | null; socketId: string; nodeInstance: string }): Promise<SessionConnected> {
    const cluster = this.config.redis.mode === 'cluster';
    const keys = [this.keys.session(a.clientId), ...(cluster ? [] : [this.keys.nodeConnections(a.nodeInstance)])];
    const reply = (await this.scripts.call('sessionConnect', keys, [
      a.presentedTokenHash ?? '', a.newTokenHash, a.userId ?? '', a.socketId, a.nodeInstance, this.config.sessions.ttlMs, a.clientId,
    ]))!;
    if (cluster) await this.index(a.nodeInstance, a.clientId, Number(reply[1]));
    return {
      epoch: Number(reply[1]),
      issued: reply[2] === 1,
      previous: { socketId: String(reply[3] ?? ''), nodeId: String(reply[4] ?? ''), status: String(reply[5] ?? '') },
      roomId: reply[6] ? String(reply[6]) : null,
    };
  }

  /** The socket of `epoch` went away. Returns the session's room, or null when stale (a newer connection exists). */
  async disconnect(clientId: string, epoch: number, now: number): Promise<{ roomId: string | null } | null> {
    const reply = await this.scripts.run('sessionDisconnect', [this.keys.session(clientId)], [epoch, now, this.config.sessions.idleTtlMs]);
    if (reply[0] !== 1) return null;
    return { roomId: reply[1] ? String(reply[1]) : null };
  }

  /** Claims `roomId` as the session's one code room (see sessionClaimRoom.lua). Throws SESSION_REPLACED when stale. */
  async claimRoom(clientId: string, epoch: number, roomId: string, now: number): Promise<ClaimResult | null> {
    const reply = await this.scripts.call('sessionClaimRoom', [this.keys.session(clientId)], [roomId, epoch, now]);
    if (!reply) return null;
    if (reply[0] === 1) return { claimed: true, alreadyThisRoom: reply[1] === 1 };
    return { claimed: false, otherRoomId: String(reply[1]), claimedAt: Number(reply[2]) };
  }

  /** Forgets the session's room if it still is `roomId` (and, with an epoch, still at that epoch). */
  async clearRoom(clientId: string, roomId: string, epoch?: number): Promise<boolean> {
    const reply = await this.scripts.run('sessionClearRoom', [this.keys.session(clientId)], [roomId, epoch ?? '']);
    return reply[0] === 1;
  }

  /** The client's live connection, if its session says it is connected. */
  async connection(clientId: string): Promise<{ socketId: string } | null> {
    const [status, socketId] = await this.redis.hmGet(this.keys.session(clientId), ['status', 'socketId']);
    return status === 'connected' && socketId ? { socketId } : null;
  }

  async userId(clientId: string): Promise<string | null> {
    return (await this.redis.hGet(this.keys.session(clientId), 'userId')) || null;
  }

  /** Records a socket in its worker instance's index (what the reaper disconnects if the instance dies). */
  private async index(nodeInstance: string, clientId: string, epoch: number): Promise<void> {
    await this.redis.hSet(this.keys.nodeConnections(nodeInstance), clientId, String(epoch));
  }

  /** Removes the entry unless a newer connection of the client replaced it. */
  async unindex(nodeInstance: string, clientId: string, epoch: number): Promise<void> {
    await this.scripts.run('nodeConnRemove', [this.keys.nodeConnections(nodeInstance)], [clientId, epoch]);
  }
}

import type { Logger } from '../observability/logger.js';
import type { Keys } from '../redis/keys.js';
import type { RedisCommands } from '../redis/client.js';
import type { SessionService } from './service.js';

export const REAP_QUEUE = 'reap';
const HEARTBEAT_MS = 2000;
// Three missed heartbeats: a long GC pause or a slow Redis must not get a live node reaped.
const ALIVE_TTL_MS = HEARTBEAT_MS * 3;
export const REAP_EVERY_MS = HEARTBEAT_MS * 2;

/**
 * Worker liveness. A worker killed with SIGKILL runs no disconnect handler, so its clients would
 * stay "online" in their rooms forever if they never come back. Each worker keeps a heartbeat key
 * and an index of its sockets (clientId → epoch); a cluster-wide periodic job finds nodes whose
 * heartbeat expired and disconnects their clients as if each socket had dropped: away, then
 * evicted after the grace period unless it rejoins. Epochs make this safe against clients that
 * already reconnected elsewhere.
 */
export class NodeLiveness {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nodeId: string,
    private readonly redis: RedisCommands,
    private readonly keys: Keys,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    await this.redis.sAdd(this.keys.nodes(), this.nodeId);
    // A per-worker timer is right here: it reports this one process's liveness.
    this.timer = setInterval(() => {
      this.beat().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'heartbeat failed'));
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    await this.redis.set(this.keys.nodeAlive(this.nodeId), '1', { PX: ALIVE_TTL_MS });
  }

  /** A clean shutdown: every socket was drained and handled, nothing is left to reap. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.del([this.keys.nodeAlive(this.nodeId), this.keys.nodeConnections(this.nodeId)]);
    await this.redis.sRem(this.keys.nodes(), this.nodeId);
  }
}

/** Called for each reaped socket, for per-user state kept outside the session (inbox devices). */
export type ReapHook = (socket: { clientId: string; epoch: number; userId: string | null }) => Promise<void>;

/** The reap job: disconnects the clients of every node whose heartbeat expired. */
export async function reapDeadNodes(redis: RedisCommands, keys: Keys, sessions: SessionService, hooks: ReapHook[], log: Logger): Promise<'done' | 'stale'> {
  let reaped = 0;
  for (const nodeId of await redis.sMembers(keys.nodes())) {
    if (await redis.exists(keys.nodeAlive(nodeId))) continue;
    const conns = await redis.hGetAll(keys.nodeConnections(nodeId));
    for (const [clientId, epoch] of Object.entries(conns)) {
      await sessions.disconnected(clientId, Number(epoch), 'node lost');
      const userId = (await redis.hGet(keys.session(clientId), 'userId')) || null;
      for (const hook of hooks) await hook({ clientId, epoch: Number(epoch), userId });
      await redis.hDel(keys.nodeConnections(nodeId), clientId);
      reaped++;
    }
    await redis.sRem(keys.nodes(), nodeId);
    log.warn({ deadNode: nodeId, clients: Object.keys(conns).length }, 'reaped the clients of a dead node');
  }
  return reaped > 0 ? 'done' : 'stale';
}

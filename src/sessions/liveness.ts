import { randomBytes } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { Keys } from '../redis/keys.js';
import type { RedisCommands } from '../redis/client.js';
import type { SessionStore } from './store.js';

export const REAP_QUEUE = 'reap';
const HEARTBEAT_MS = 2000;
// Three missed heartbeats: a long GC pause or a slow Redis must not get a live node reaped.
const ALIVE_TTL_MS = HEARTBEAT_MS * 3;
export const REAP_EVERY_MS = HEARTBEAT_MS * 2;

/**
 * Worker liveness. A worker killed with SIGKILL runs no disconnect handler, so its clients would
 * stay "online" in their rooms forever if they never come back. Each worker process keeps a
 * heartbeat key and an index of its sockets (clientId → epoch); a cluster-wide periodic job finds
 * processes whose heartbeat expired and disconnects their clients as if each socket had dropped:
 * away, then evicted after the grace period unless it rejoins. Epochs make this safe against
 * clients that already reconnected elsewhere.
 *
 * Liveness belongs to a process incarnation, not to a NODE_ID: a worker restarted under the same
 * NODE_ID (npm start's respawn, compose's fixed ids, a Kubernetes container restart) is a new
 * *instance* with its own heartbeat and index, so the dead one's heartbeat expires and is reaped
 * although the name lives on, and a new process never adopts its predecessor's sockets.
 *
 * Fencing: a heartbeat only ever *refreshes* its key (SET … XX). If the key is gone — Redis was
 * paused or unreachable past the TTL, so the reaper may have declared this process dead and marked
 * its clients away — the worker does not carry on as if nothing happened: it registers a new
 * instance and closes the transports of every socket of the old one, so those clients reconnect
 * and rejoin (inside their grace period) instead of staying connected to a seat that is being
 * evicted under them.
 */
export class NodeLiveness {
  private timer: NodeJS.Timeout | undefined;
  private current: string;
  private stopped = false;
  private beating = false;

  constructor(
    readonly nodeId: string,
    private readonly redis: RedisCommands,
    private readonly keys: Keys,
    private readonly log: Logger,
    /** Called after a new instance replaced a fenced one: close the old instance's sockets. */
    private readonly onFenced: (oldInstance: string, newInstance: string) => void,
  ) {
    this.current = NodeLiveness.newInstance(nodeId);
  }

  static newInstance(nodeId: string): string {
    return `${nodeId}~${randomBytes(4).toString('hex')}`;
  }

  /** The instance new sockets are indexed under. */
  get instance(): string {
    return this.current;
  }

  async start(): Promise<void> {
    await this.register(this.current);
    // A per-worker timer is right here: it reports this one process's liveness.
    this.timer = setInterval(() => {
      this.beat().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'heartbeat failed'));
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  private async register(instance: string): Promise<void> {
    await this.redis.set(this.keys.nodeAlive(instance), this.nodeId, { PX: ALIVE_TTL_MS });
    await this.redis.sAdd(this.keys.nodes(), instance);
  }

  private async beat(): Promise<void> {
    // One beat at a time: beats queued behind an outage would each find the key gone and fence
    // again, closing the sockets that just came back under the new instance.
    if (this.stopped || this.beating) return;
    this.beating = true;
    try {
      const instance = this.current;
      const refreshed = await this.redis.set(this.keys.nodeAlive(instance), this.nodeId, { PX: ALIVE_TTL_MS, XX: true });
      if (refreshed !== null || this.stopped || instance !== this.current) return;
      await this.fence(instance);
    } finally {
      this.beating = false;
    }
  }

  private async fence(old: string): Promise<void> {
    this.current = NodeLiveness.newInstance(this.nodeId);
    await this.register(this.current);
    metrics.fencings.inc();
    this.log.warn({ oldInstance: old, instance: this.current }, 'heartbeat had expired (Redis unreachable or paused): fencing, clients of the old instance reconnect');
    this.onFenced(old, this.current);
  }

  /**
   * A clean shutdown, after every disconnect was handled. The heartbeat goes first; the index and
   * the registration go only when every socket's disconnect was recorded — whatever is left (a
   * disconnect cut off by the deadline) stays for the reaper to finish.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    const instance = this.current;
    await this.redis.del(this.keys.nodeAlive(instance));
    const left = await this.redis.hLen(this.keys.nodeConnections(instance));
    if (left > 0) {
      this.log.warn({ instance, sockets: left }, 'stopping with disconnects unrecorded: left for the reaper');
      return;
    }
    await this.redis.del(this.keys.nodeConnections(instance));
    await this.redis.sRem(this.keys.nodes(), instance);
  }
}

/** Runs the disconnect path for one socket of a dead instance (membership, inbox devices…). */
export type ReapHook = (socket: { clientId: string; epoch: number; userId: string | null }) => Promise<void>;

const REAP_CONCURRENCY = 50;

/** The reap job: disconnects the clients of every worker instance whose heartbeat expired. */
export async function reapDeadNodes(redis: RedisCommands, keys: Keys, sessions: SessionStore, hooks: ReapHook[], log: Logger): Promise<'done'> {
  for (const instance of await redis.sMembers(keys.nodes())) {
    if (await redis.exists(keys.nodeAlive(instance))) continue;
    const conns = Object.entries(await redis.hGetAll(keys.nodeConnections(instance)));
    for (let i = 0; i < conns.length; i += REAP_CONCURRENCY) {
      await Promise.all(
        conns.slice(i, i + REAP_CONCURRENCY).map(async ([clientId, epoch]) => {
          const userId = await sessions.userId(clientId);
          for (const hook of hooks) await hook({ clientId, epoch: Number(epoch), userId });
          await redis.hDel(keys.nodeConnections(instance), clientId);
        }),
      );
    }
    await redis.sRem(keys.nodes(), instance);
    metrics.reapedSockets.inc(conns.length);
    if (conns.length > 0) log.warn({ deadInstance: instance, clients: conns.length }, 'reaped the clients of a dead worker');
  }
  return 'done';
}

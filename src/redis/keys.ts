/**
 * Every Redis key Tether uses is built here. All keys of one room share the hash tag
 * `{r:<roomId>}`, all keys of one client `{c:<clientId>}`, of one user `{u:<userId>}`, so that on
 * Redis Cluster each Lua script touches exactly one slot. The prefix isolates deployments and
 * test runs that share a Redis.
 */
export interface RoomKeys {
  /** hash: id code name kind passwordHash maxParticipants createdAt hostUserId hostClientId seq */
  meta: string;
  /** hash: clientId → participant JSON (with epoch and the last announced status) */
  members: string;
  /** hash: userId → number of this user's clientIds in the room */
  users: string;
  /** sorted set scored by seq: the catch-up log; members are LogEntry JSON */
  log: string;
  /** hash: `<clientId>|<clientMsgId>` → seq, for idempotent publish */
  dedup: string;
  /** sorted set scored by ms: dedup field → when it was written, for age trimming */
  dedupAge: string;
  /** hash: clientId → status changed since the last presence flush */
  pending: string;
  /** string: set while a flush job for the pending set is scheduled (value: job generation) */
  flush: string;
  /** sorted set: clientId → when its grace period ends (ms), for every member away */
  away: string;
  /** hash: playback state */
  playback: string;
  /** hash: clientId → latest reported RTT ms */
  rtt: string;
  /** list: lifecycle webhooks written by the room's scripts, until relayed to the delivery queue */
  hooks: string;
  /** string "tokens ts": the room's publish token bucket */
  publishBucket: string;
  /** string "tokens ts": one publisher's token bucket in this room (a user's devices share it) */
  publisherBucket(publisher: string): string;
}

/** The room's state keys in the order every room script takes them first (see room_keys in common.lua). */
export type RoomStateKeys = [meta: string, members: string, users: string, playback: string, rtt: string, pending: string];

/** Shards of the webhook outbox index (see Keys.webhookOutboxes). */
export const OUTBOX_INDEX_SHARDS = 16;

export class Keys {
  constructor(readonly prefix: string) {}

  room(roomId: string): RoomKeys {
    const p = `${this.prefix}:{r:${roomId}}`;
    return {
      meta: `${p}:meta`,
      members: `${p}:members`,
      users: `${p}:users`,
      log: `${p}:log`,
      dedup: `${p}:dedup`,
      dedupAge: `${p}:dedupage`,
      pending: `${p}:pending`,
      flush: `${p}:flush`,
      away: `${p}:away`,
      playback: `${p}:playback`,
      rtt: `${p}:rtt`,
      hooks: `${p}:hooks`,
      // Not the `rl:pub` hashes of earlier versions: during a rolling deploy each version reads its
      // own type (a hash read as a string would fail with WRONGTYPE).
      publishBucket: `${p}:bucket`,
      publisherBucket: (publisher) => `${p}:bucket:${publisher}`,
    };
  }

  /** KEYS[1..6] of every script over a room's state: one TTL rule refreshes all six. */
  roomState(roomId: string): RoomStateKeys {
    const k = this.room(roomId);
    return [k.meta, k.members, k.users, k.playback, k.rtt, k.pending];
  }

  /** hash: tokenHash userId socketId nodeId status roomId roomClaimedAt joinedAt epoch disconnectedAt */
  session(clientId: string): string {
    return `${this.prefix}:{c:${clientId}}:session`;
  }

  /** hash: clientId → epoch of every connected device of the user (same slot as the inbox) */
  userConnections(userId: string): string {
    return `${this.prefix}:{u:${userId}}:conns`;
  }

  /** sorted set by ms: the user's undelivered-or-unacknowledged direct messages (JSON) */
  userInbox(userId: string): string {
    return `${this.prefix}:{u:${userId}}:inbox`;
  }

  /**
   * sorted set by createdAt: every room, for the operators' listing (GET /v1/rooms). A global key,
   * written after the room's own script (another slot); entries of expired rooms are pruned when
   * a listing meets them.
   */
  roomIndex(): string {
    return `${this.prefix}:rooms`;
  }

  /** list: the user's lifecycle webhooks (user.online / user.offline) until relayed */
  userHooks(userId: string): string {
    return `${this.prefix}:{u:${userId}}:hooks`;
  }

  /** hash {state: online|offline, gen}: what webhooks last said of the user, and a transition counter */
  userPresence(userId: string): string {
    return `${this.prefix}:{u:${userId}}:presence`;
  }

  /**
   * set: outboxes that may hold unrelayed webhooks (the sweeper's index), shard `shard` of
   * OUTBOX_INDEX_SHARDS. Every relay writes it twice, so one set would be a hot key on one Redis
   * Cluster master; each shard has its own hash tag and the sweeper reads them all.
   */
  webhookOutboxes(shard: number): string {
    return `${this.prefix}:{wh:${shard}}:outboxes`;
  }

  /** Which index shard an outbox is listed in (stable across processes: FNV-1a of its key). */
  outboxShard(outbox: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < outbox.length; i++) h = Math.imul(h ^ outbox.charCodeAt(i), 0x01000193);
    return (h >>> 0) % OUTBOX_INDEX_SHARDS;
  }

  /** list: webhooks out of delivery attempts, newest first, bounded */
  webhookDeadLetters(): string {
    return `${this.prefix}:webhooks:dead`;
  }

  /** SCAN pattern of every outbox (room and user), for the sweeper's rare full pass */
  hooksPattern(): string {
    return `${this.prefix}:*:hooks`;
  }

  /** set: ids of worker nodes that may hold sockets (for the reaper) */
  nodes(): string {
    return `${this.prefix}:nodes`;
  }

  /** string with a short TTL, refreshed by the node's heartbeat: gone means the node is dead */
  nodeAlive(nodeId: string): string {
    return `${this.prefix}:{n:${nodeId}}:alive`;
  }

  /** hash: clientId → epoch of every socket connected to the node */
  nodeConnections(nodeId: string): string {
    return `${this.prefix}:{n:${nodeId}}:conns`;
  }

  /**
   * BullMQ prefix of a queue partition: one hash tag for all keys of a queue (BullMQ's own scripts
   * touch several keys of a queue at once and need them in one slot on Redis Cluster), a different
   * tag per partition so that partitions spread over the masters. Partition 0 is the historical
   * `{<prefix>-bull}`.
   */
  bullPrefix(partition = 0): string {
    return partition === 0 ? `{${this.prefix}-bull}` : `{${this.prefix}-bull-${partition}}`;
  }
}

import { webhookFilter, type Config } from '../config/index.js';
import type { RoomStatePayload } from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import type { RedisCommands } from '../redis/client.js';
import type { Keys } from '../redis/keys.js';
import type { Scripts } from '../redis/scripts.js';
import { roomState } from './model.js';

export interface NewRoom {
  id: string;
  code: string;
  name: string;
  kind: 'room' | 'program';
  passwordHash: string;
  maxParticipants: number;
  createdAt: number;
  hostUserId: string | null;
  incarnation: string;
}

/** Typed access to a room's meta and state: named arguments in, typed results out. */
export class RoomStore {
  constructor(
    private readonly config: Config,
    private readonly redis: RedisCommands,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
  ) {}

  /** Creates the room unless its id is taken (then only refreshes its TTL). Returns whether it was created. */
  async create(room: NewRoom): Promise<boolean> {
    const reply = await this.scripts.run('createRoom', [...this.keys.roomState(room.id), this.keys.room(room.id).hooks], [
      room.id, room.code, room.name, room.kind, room.passwordHash, room.maxParticipants, room.createdAt, room.hostUserId ?? '',
      this.config.rooms.ttlMs, room.incarnation, webhookFilter(this.config),
    ]);
    return reply[0] === 1;
  }

  /** Lists the room for operators (GET /v1/rooms). */
  async index(roomId: string, createdAt: number): Promise<void> {
    await this.redis.zAdd(this.keys.roomIndex(), { score: createdAt, value: roomId });
  }

  /**
   * A page of the room index in (createdAt, id) order after `after`, with each room's meta and
   * member count. Ids whose room expired are pruned from the index as they are met.
   */
  async page(after: { createdAt: number; id: string } | null, limit: number): Promise<{ meta: Record<string, string>; members: number }[]> {
    const out: { meta: Record<string, string>; members: number }[] = [];
    const index = this.keys.roomIndex();
    let offset = 0;
    const batch = Math.max(limit, 50);
    while (out.length < limit) {
      const rows = await this.redis.zRangeByScoreWithScores(index, after ? after.createdAt : '-inf', '+inf', { LIMIT: { offset, count: batch } });
      if (rows.length === 0) break;
      offset += rows.length;
      // Same-millisecond rooms share a score and sort by id: skip up to the cursor within it.
      const fresh = rows.filter((r) => !after || r.score > after.createdAt || r.value > after.id);
      const metas = await Promise.all(fresh.map((r) => this.redis.hGetAll(this.keys.room(r.value).meta)));
      const counts = await Promise.all(fresh.map((r) => this.redis.hLen(this.keys.room(r.value).members)));
      const gone: string[] = [];
      fresh.forEach((r, i) => {
        if (!metas[i]!.id) gone.push(r.value);
        else if (out.length < limit) out.push({ meta: metas[i]!, members: counts[i]! });
      });
      if (gone.length) {
        await this.redis.zRem(index, gone);
        offset -= gone.length;
      }
      if (rows.length < batch) break;
    }
    return out;
  }

  /** Deletes the room and every key of it. Returns the members it had, or null when there was no room. */
  async delete(roomId: string): Promise<string[] | null> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('deleteRoom', [...this.keys.roomState(roomId), k.log, k.dedup, k.dedupAge, k.flush, k.publishBucket, k.hooks, k.away], [webhookFilter(this.config)]);
    if (!reply) return null;
    await this.redis.zRem(this.keys.roomIndex(), roomId);
    return reply.slice(1).map(String);
  }

  async meta(roomId: string): Promise<Record<string, string>> {
    return this.redis.hGetAll(this.keys.room(roomId).meta);
  }

  async isMember(roomId: string, clientId: string): Promise<boolean> {
    return (await this.redis.hExists(this.keys.room(roomId).members, clientId)) === 1;
  }

  /** The full state of a room with the seq (and incarnation) it corresponds to, read atomically. */
  async snapshot(roomId: string, now = Date.now()): Promise<RoomStatePayload> {
    const reply = await this.scripts.call('snapshot', this.keys.roomState(roomId), []);
    if (!reply) throw new TetherError('ROOM_NOT_FOUND');
    return roomState(reply[1], reply[2], reply[3], now);
  }
}

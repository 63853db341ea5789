import type { Config } from '../config/index.js';
import type { RoomStatePayload } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
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
    const reply = await this.scripts.run('createRoom', this.keys.roomState(room.id), [
      room.id, room.code, room.name, room.kind, room.passwordHash, room.maxParticipants, room.createdAt, room.hostUserId ?? '',
      this.config.rooms.ttlMs, room.incarnation,
    ]);
    return reply[0] === 1;
  }

  async meta(roomId: string): Promise<Record<string, string>> {
    return this.redis.hGetAll(this.keys.room(roomId).meta);
  }

  /** What admission needs to know before the atomic step: whether the room exists, its kind and password hash. */
  async entry(roomId: string): Promise<{ kind: string; passwordHash: string } | null> {
    const [kind, passwordHash] = await this.redis.hmGet(this.keys.room(roomId).meta, ['kind', 'passwordHash']);
    return kind ? { kind, passwordHash: passwordHash ?? '' } : null;
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

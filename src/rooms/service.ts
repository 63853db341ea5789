import type { Config } from '../config/index.js';
import type { JoinResult, Participant, ParticipantLeft, RoomInfo, RoomStatePayload } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import type { RoomCreateInput } from '../protocol/schemas.js';
import { metrics } from '../observability/metrics.js';
import type { Keys } from '../redis/keys.js';
import type { RedisCommands } from '../redis/client.js';
import type { Scripts } from '../redis/scripts.js';
import type { TetherNamespace } from '../transport/types.js';
import { broadcast } from './broadcast.js';
import { generateRoomCode } from './codes.js';
import { newIncarnation, roomInfo, roomState, participant } from './model.js';
import { hashPassword, verifyPassword } from './password.js';

export interface Member {
  clientId: string;
  userId: string | null;
  name: string;
  epoch: number;
}

/**
 * Rooms: creation, admission, leaving and state snapshots. A code-joined room's id is its code, so
 * every key of the room is found from what the client types, without a second lookup key that
 * would live in another Redis Cluster slot.
 */
export class RoomService {
  constructor(
    private readonly config: Config,
    private readonly redis: RedisCommands,
    private readonly scripts: Scripts,
    private readonly keys: Keys,
    private readonly nsp: TetherNamespace,
  ) {}

  async create(input: RoomCreateInput, creator: { userId: string | null }, via: 'http' | 'socket'): Promise<RoomInfo> {
    const passwordHash = input.password ? await hashPassword(input.password) : '';
    const maxParticipants = Math.min(input.maxParticipants ?? this.config.rooms.maxParticipants, this.config.rooms.maxParticipants);
    const createdAt = Date.now();
    // 31^8 ≈ 8.5e11 codes: a collision is rare, and createRoom refuses to overwrite, so retry.
    for (let attempt = 0; attempt < 5; attempt++) {
      const code = generateRoomCode();
      const name = input.name ?? `Room ${code}`;
      const created = await this.scripts.run('createRoom', [this.keys.room(code).meta], [
        code, code, name, 'room', passwordHash, maxParticipants, createdAt, creator.userId ?? '', this.config.rooms.ttlMs, newIncarnation(createdAt),
      ]);
      if (created[0] === 1) {
        metrics.roomsCreated.inc({ via });
        return { id: code, code, name, kind: 'room', maxParticipants, hasPassword: Boolean(passwordHash), createdAt, hostClientId: null };
      }
    }
    throw new TetherError('INTERNAL_ERROR', 'could not allocate a room code');
  }

  /** Program rooms exist as soon as a JWT names them; they have no code, password or capacity. */
  async ensureProgramRoom(roomId: string): Promise<void> {
    await this.scripts.run('createRoom', [this.keys.room(roomId).meta], [
      roomId, '', roomId, 'program', '', this.config.rooms.maxParticipants, Date.now(), '', this.config.rooms.ttlMs, newIncarnation(Date.now()),
    ]);
  }

  async info(roomId: string): Promise<RoomInfo> {
    const meta = await this.redis.hGetAll(this.keys.room(roomId).meta);
    if (!meta.id) throw new TetherError('ROOM_NOT_FOUND');
    return roomInfo(meta);
  }

  /**
   * The checks before admission that need no atomicity: the room exists, is joinable by code, and
   * the password (a slow hash, never run inside Redis) matches.
   */
  async verifyEntry(roomId: string, password: string | undefined, attempt: () => Promise<{ succeeded(): Promise<void> }>): Promise<void> {
    const [kind, passwordHash] = await this.redis.hmGet(this.keys.room(roomId).meta, ['kind', 'passwordHash']);
    if (!kind) throw new TetherError('ROOM_NOT_FOUND');
    if (kind === 'program') throw new TetherError('NOT_IN_ROOM', 'program rooms are joined through the JWT rooms claim');
    if (!passwordHash) return;
    // The attempt budget is taken before the hash: a locked-out guesser costs no scrypt time.
    const budget = await attempt();
    if (!(password && (await verifyPassword(password, passwordHash)))) throw new TetherError('INVALID_PASSWORD');
    await budget.succeeded();
  }

  /**
   * Admits `member`: existence, capacity and membership are decided atomically by joinRoom.lua, so
   * two workers admitting the last seat at once cannot overfill the room. Returns null when the
   * client already is a member: the caller treats that as a rejoin.
   */
  async admit(roomId: string, member: Member): Promise<JoinResult | null> {
    const k = this.keys.room(roomId);
    const now = Date.now();
    const reply = await this.scripts.call('joinRoom', [k.meta, k.members, k.users, k.log, k.playback], [
      member.clientId, member.userId ?? '', member.name, member.epoch, now,
      this.config.events.catchupMaxEvents, this.config.events.catchupTtlMs, this.config.rooms.ttlMs,
    ]);
    if (!reply || reply[0] === 2) return null;
    metrics.roomsJoined.inc();
    metrics.eventsPublished.inc({ source: 'system' });
    const state = roomState(reply[3], reply[4], reply[5], now);
    const self = participant(String(reply[2]));
    return { ...state, self };
  }

  /** Announces a join to everyone else in the room (the joiner has it in its room:state). */
  announceJoin(roomId: string, seq: number, self: Participant, joinerSocketId: string): void {
    broadcast(this.nsp, 'room:participant:joined', { roomId, seq, participant: self }, joinerSocketId);
  }

  /**
   * Removes a member and broadcasts room:participant:left. For evictions, `epoch` must match the
   * member's epoch and the member must still be away; otherwise nothing happens (returns null).
   */
  async remove(roomId: string, clientId: string, how: { mode: 'leave' | 'evict'; epoch: number; reason: ParticipantLeft['reason'] }): Promise<ParticipantLeft | null> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('leaveRoom', [k.meta, k.members, k.users, k.log, k.pending], [
      clientId, how.mode, how.epoch, how.reason, this.config.events.catchupMaxEvents, this.config.events.catchupTtlMs, this.config.rooms.ttlMs,
    ]);
    if (!reply) return null;
    const payload = { ...(JSON.parse(String(reply[2])) as Omit<ParticipantLeft, 'seq'>), seq: Number(reply[1]) };
    metrics.eventsPublished.inc({ source: 'system' });
    broadcast(this.nsp, 'room:participant:left', payload);
    return payload;
  }

  /** The full state of a room with the seq it corresponds to, read atomically. */
  async snapshot(roomId: string): Promise<RoomStatePayload> {
    const k = this.keys.room(roomId);
    const reply = await this.scripts.call('snapshot', [k.meta, k.members, k.playback], []);
    return roomState(reply![1], reply![2], reply![3], Date.now());
  }

  async isMember(roomId: string, clientId: string): Promise<boolean> {
    return (await this.redis.hExists(this.keys.room(roomId).members, clientId)) === 1;
  }
}

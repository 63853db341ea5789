import type { Config } from '../config/index.js';
import type { Limits } from '../limits/limits.js';
import { metrics } from '../observability/metrics.js';
import type { RoomInfo } from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import type { RoomCreateInput } from '../protocol/schemas.js';
import { generateRoomCode } from './codes.js';
import { newIncarnation, roomInfo } from './model.js';
import { hashPassword, verifyPassword } from './password.js';
import type { Webhooks } from '../webhooks/service.js';
import type { RoomStore } from './store.js';

/**
 * Rooms: creation, public info and the checks before admission. A code room's id is its code, so
 * every key of the room is found from what the client types, without a second lookup key that
 * would live in another Redis Cluster slot. Admission itself (seats, presence) is membership's.
 */
export class RoomService {
  constructor(
    private readonly config: Config,
    private readonly store: RoomStore,
    private readonly limits: Limits,
    private readonly webhooks: Webhooks,
  ) {}

  /**
   * A user's room (that user becomes host when it joins), or a demo page's guest room (no host
   * user: the first member to join is host), budgeted per client address.
   */
  async create(input: RoomCreateInput, creator: { userId: string } | { guestAddress: string }, via: 'http' | 'socket' | 'demo'): Promise<RoomInfo> {
    const hostUserId = 'userId' in creator ? creator.userId : null;
    await this.limits.createRoom('userId' in creator ? creator.userId : `guest@${creator.guestAddress}`);
    const passwordHash = input.password ? await hashPassword(input.password) : '';
    const maxParticipants = Math.min(input.maxParticipants ?? this.config.rooms.maxParticipants, this.config.rooms.maxParticipants);
    const createdAt = Date.now();
    // 31^8 ≈ 8.5e11 codes: a collision is rare, and createRoom refuses to overwrite, so retry.
    for (let attempt = 0; attempt < 5; attempt++) {
      const code = generateRoomCode();
      const name = input.name ?? `Room ${code}`;
      const created = await this.store.create({
        id: code, code, name, kind: 'room', passwordHash, maxParticipants, createdAt, hostUserId, incarnation: newIncarnation(createdAt),
      });
      if (created) {
        await this.store.index(code, createdAt);
        this.webhooks.relayRoomSoon(code);
        metrics.roomsCreated.inc({ via });
        return { id: code, code, name, kind: 'room', maxParticipants, hasPassword: Boolean(passwordHash), createdAt, hostClientId: null };
      }
    }
    throw new TetherError('INTERNAL_ERROR', 'could not allocate a room code');
  }

  /** Program rooms exist as soon as a JWT names them; they have no code, password or capacity. */
  async ensureProgramRoom(roomId: string): Promise<void> {
    const now = Date.now();
    const created = await this.store.create({
      id: roomId, code: '', name: roomId, kind: 'program', passwordHash: '', maxParticipants: this.config.rooms.maxParticipants, createdAt: now, hostUserId: null,
      incarnation: newIncarnation(now),
    });
    if (created) {
      await this.store.index(roomId, now);
      this.webhooks.relayRoomSoon(roomId);
    }
  }

  /** A page of every room for operators; `cursor` is the previous page's nextCursor. */
  async list(cursor: string | null, limit: number): Promise<{ rooms: (RoomInfo & { members: number })[]; nextCursor: string | null }> {
    const after = cursor ? { createdAt: Number(cursor.slice(0, cursor.indexOf(':'))), id: cursor.slice(cursor.indexOf(':') + 1) } : null;
    const page = await this.store.page(after, limit);
    const out = page.map((r) => ({ ...roomInfo(r.meta), members: r.members }));
    const last = out.at(-1);
    return { rooms: out, nextCursor: out.length === limit && last ? `${last.createdAt}:${last.id}` : null };
  }

  async info(roomId: string): Promise<RoomInfo> {
    const meta = await this.store.meta(roomId);
    if (!meta.id) throw new TetherError('ROOM_NOT_FOUND');
    return roomInfo(meta);
  }

  /**
   * A join's password check, against the hash admission handed out (joinRoom.lua): the slow hash
   * never runs inside Redis. `attempt` takes a password attempt from the budgets before the hash
   * runs, so a locked-out guesser costs no scrypt time.
   */
  async checkPassword(password: string | undefined, passwordHash: string, attempt: () => Promise<{ succeeded(): Promise<void> }>): Promise<void> {
    const budget = await attempt();
    if (!(password && (await verifyPassword(password, passwordHash)))) throw new TetherError('INVALID_PASSWORD');
    await budget.succeeded();
  }
}

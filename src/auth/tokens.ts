import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { jwtVerify } from 'jose';
import { TetherError } from '@tether/protocol';
import { cleanName, RoomId } from '../protocol/schemas.js';

export interface Identity {
  userId: string;
  name: string;
  /** Program rooms the user belongs to (JWT claim `rooms`), re-read on every connect. */
  rooms: string[];
  /** May publish to any room over HTTP (JWT claim `role: "publisher"`). */
  publisher: boolean;
}

/** Verifies an HS256 JWT. Any failure is INVALID_TOKEN: the reason goes to the log, not the client. */
export async function verifyJwt(token: string, secret: string | undefined): Promise<Identity> {
  if (!secret) throw new TetherError('INVALID_TOKEN', 'this server does not accept JWTs (JWT_SECRET unset)');
  let payload;
  try {
    ({ payload } = await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'] }));
  } catch (err) {
    throw new TetherError('INVALID_TOKEN', `invalid token: ${(err as Error).message}`);
  }
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 128) {
    throw new TetherError('INVALID_TOKEN', 'token has no usable sub claim');
  }
  const rooms = Array.isArray(payload.rooms) ? payload.rooms.filter((r): r is string => RoomId.safeParse(r).success) : [];
  const claimed = typeof payload.name === 'string' ? cleanName(payload.name.slice(0, 256)).slice(0, 64) : '';
  const name = claimed || cleanName(payload.sub).slice(0, 64) || payload.sub.slice(0, 64);
  const roles = Array.isArray(payload.roles) ? payload.roles : [payload.role];
  return { userId: payload.sub, name, rooms: [...new Set(rooms)].slice(0, 100), publisher: roles.includes('publisher') };
}

const TOKEN_BYTES = 32;
// Random bytes are drawn 8 KiB at a time (as crypto.randomUUID does): one randomBytes call per
// handshake cost more than the rest of the token. Every slice is handed out once.
const POOL_BYTES = TOKEN_BYTES * 256;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** A session token: 256 random bits, handed to the client once, stored only as its SHA-256. */
export function issueSessionToken(): { token: string; hash: string } {
  if (poolOffset + TOKEN_BYTES > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const token = pool.toString('base64url', poolOffset, poolOffset + TOKEN_BYTES);
  poolOffset += TOKEN_BYTES;
  return { token, hash: hashSessionToken(token) };
}

// A fast hash is right here: the token is 256 random bits, not a guessable password.
export function hashSessionToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** Constant-time comparison of a presented secret (service token) with the configured one. */
export function secretEquals(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

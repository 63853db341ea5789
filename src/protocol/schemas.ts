import { z } from 'zod';
import { ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH } from '@tether/protocol';
import type * as P from '@tether/protocol';

/**
 * Runtime schemas of every client→server payload. The TypeScript types of the wire contract are
 * inferred from these, so validation and types cannot drift apart.
 * Limits here are structural; size caps that operators tune (event data bytes) come from config.
 */

export { ROOM_CODE_ALPHABET, ROOM_CODE_LENGTH };

export const RoomCode = z
  .string()
  .transform((s) => s.trim().toUpperCase())
  .pipe(z.string().regex(new RegExp(`^[${ROOM_CODE_ALPHABET}]{${ROOM_CODE_LENGTH}}$`), 'must be an 8-character room code'));
/** Room ids are server-generated for created rooms; program rooms take their id from a JWT claim. */
export const RoomId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -');
export const ClientId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'must be 8-64 letters, digits, _ or - (a UUID works)');
export const Seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** A room incarnation as the server issued it (opaque to clients; compared for equality only). */
export const Incarnation = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be an incarnation as the server sent it');
/**
 * Characters that change how other people's screens show text, not what it says: C0/C1 controls
 * (NUL, ESC and with it terminal escape sequences), bidi embeddings/overrides/isolates (a name
 * that reverses the text after it), zero-width characters and BOMs (look-alike names).
 */
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]/g;

/** A name as people see it: NFC, invisible and control characters stripped, trimmed. */
export function cleanName(raw: string): string {
  return raw.normalize('NFC').replace(INVISIBLE, '').trim();
}

export const DisplayName = z
  .string()
  .max(256)
  .transform(cleanName)
  .pipe(z.string().min(1, 'must contain a visible character').max(64));
/** App event and signal types: namespaced, short, printable. */
export const EventType = z.string().regex(/^[A-Za-z0-9_.:\-]{1,64}$/, 'must be 1-64 letters, digits or _ . : -');
export const ClientMsgId = z.string().regex(/^[A-Za-z0-9_.:\-]{1,128}$/, 'must be 1-128 letters, digits or _ . : -');
const Json = z.json();

export const HandshakeAuth = z
  .object({
    token: z.string().min(1).max(8192).optional(),
    clientId: ClientId.optional(),
    sessionToken: z.string().regex(/^[A-Za-z0-9_-]{20,128}$/).optional(),
    /** Rooms to rejoin right after connect, with the last seq the client holds for each. */
    lastSeq: z.record(RoomId, Seq).optional(),
    /** The incarnation each lastSeq belongs to; a lastSeq without one is trusted as the current incarnation's. */
    incarnations: z.record(RoomId, Incarnation).optional(),
    roomId: RoomId.optional(),
  })
  .strip();

export const RoomCreate = z
  .object({
    name: DisplayName.optional(),
    password: z.string().min(1).max(128).optional(),
    maxParticipants: z.number().int().min(1).max(100_000).optional(),
  })
  .strict();

export const RoomJoin = z
  .object({
    roomCode: RoomCode,
    password: z.string().max(128).optional(),
    guestName: DisplayName.optional(),
    lastSeq: Seq.optional(),
    incarnation: Incarnation.optional(),
    stateEvent: z.boolean().optional(),
  })
  .strict();

export const RoomLeave = z.object({ roomId: RoomId.optional() }).strict();

export const RoomRejoin = z
  .object({
    roomId: RoomId.optional(),
    roomCode: RoomCode.optional(),
    lastSeq: Seq.optional(),
    incarnation: Incarnation.optional(),
  })
  .strict()
  .refine((v) => v.roomId !== undefined || v.roomCode !== undefined, { message: 'roomId or roomCode is required' });

export const RoomPublish = z
  .object({
    roomId: RoomId.optional(),
    type: EventType,
    data: Json,
    clientMsgId: ClientMsgId,
  })
  .strict();

export const RoomSignal = z
  .object({
    roomId: RoomId.optional(),
    type: EventType,
    data: Json,
  })
  .strict();

export const RoomCatchup = z
  .object({
    roomId: RoomId,
    fromSeq: Seq,
    incarnation: Incarnation.optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
  })
  .strict();

export const SyncPing = z.object({ clientTimestamp: z.number().finite() }).strict();
export const SyncReport = z
  .object({
    roomId: RoomId.optional(),
    rttMs: z.number().finite().min(0).max(60_000),
    offsetMs: z.number().finite().min(-86_400_000).max(86_400_000),
  })
  .strict();

const PositionMs = z.number().finite().min(0).max(7 * 24 * 3600_000);
export const PlaybackStart = z
  .object({ roomId: RoomId.optional(), trackId: z.string().min(1).max(256), positionMs: PositionMs.default(0) })
  .strict();
export const PlaybackPause = z.object({ roomId: RoomId.optional(), positionMs: PositionMs.optional() }).strict();
export const PlaybackSeek = z.object({ roomId: RoomId.optional(), positionMs: PositionMs }).strict();
export const PlaybackStop = z.object({ roomId: RoomId.optional() }).strict();
export const PlaybackGrant = z
  .object({ roomId: RoomId.optional(), clientId: ClientId, allowed: z.boolean() })
  .strict();

export const InboxAck = z.object({ ids: z.array(z.string().min(1).max(64)).min(1).max(500) }).strict();
export const UserMessage = z
  .object({ toUserId: z.string().min(1).max(128), type: EventType, data: Json, clientMsgId: ClientMsgId.optional() })
  .strict();

// HTTP bodies
export const HttpRoomCreate = RoomCreate;
export const HttpPublish = z
  .object({ type: EventType, data: Json, idempotencyKey: ClientMsgId.optional() })
  .strict();
export const HttpUserMessage = z.object({ type: EventType, data: Json }).strict();

/**
 * Each schema accepts exactly the request shape the protocol package declares (clients compile
 * against those plain types, without zod): a change on one side that the other does not follow
 * fails to compile here.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Agrees<S extends z.ZodType, T> = Same<z.input<S>, T> extends true ? true : { schema: z.input<S>; protocol: T };
const agreement: {
  handshake: Agrees<typeof HandshakeAuth, P.HandshakeAuthInput>;
  create: Agrees<typeof RoomCreate, P.RoomCreateInput>;
  join: Agrees<typeof RoomJoin, P.RoomJoinInput>;
  leave: Agrees<typeof RoomLeave, P.RoomLeaveInput>;
  rejoin: Agrees<typeof RoomRejoin, P.RoomRejoinInput>;
  publish: Agrees<typeof RoomPublish, P.RoomPublishInput>;
  signal: Agrees<typeof RoomSignal, P.RoomSignalInput>;
  catchup: Agrees<typeof RoomCatchup, P.RoomCatchupInput>;
  ping: Agrees<typeof SyncPing, P.SyncPingInput>;
  report: Agrees<typeof SyncReport, P.SyncReportInput>;
  start: Agrees<typeof PlaybackStart, P.PlaybackStartInput>;
  pause: Agrees<typeof PlaybackPause, P.PlaybackPauseInput>;
  seek: Agrees<typeof PlaybackSeek, P.PlaybackSeekInput>;
  stop: Agrees<typeof PlaybackStop, P.PlaybackStopInput>;
  grant: Agrees<typeof PlaybackGrant, P.PlaybackGrantInput>;
  inboxAck: Agrees<typeof InboxAck, P.InboxAckInput>;
  message: Agrees<typeof UserMessage, P.UserMessageInput>;
} = {
  handshake: true, create: true, join: true, leave: true, rejoin: true, publish: true, signal: true, catchup: true, ping: true,
  report: true, start: true, pause: true, seek: true, stop: true, grant: true, inboxAck: true, message: true,
};
void agreement;

export type {
  HandshakeAuthInput,
  RoomCreateInput,
  RoomJoinInput,
  RoomLeaveInput,
  RoomRejoinInput,
  RoomPublishInput,
  RoomSignalInput,
  RoomCatchupInput,
  SyncPingInput,
  SyncReportInput,
  PlaybackStartInput,
  PlaybackPauseInput,
  PlaybackSeekInput,
  PlaybackStopInput,
  PlaybackGrantInput,
  InboxAckInput,
  UserMessageInput,
} from '@tether/protocol';

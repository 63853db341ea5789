/**
 * What clients send: the payload of every request, as plain types (no runtime, no validation
 * library), so the SDK and any app compile against the contract without the server's zod. The
 * server validates each with a zod schema (src/protocol/schemas.ts) that is checked at compile
 * time to accept exactly these shapes.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface HandshakeAuthInput {
  token?: string | undefined;
  clientId?: string | undefined;
  sessionToken?: string | undefined;
  /** The last seq the client holds per room, for the automatic rejoin of `roomId` and of program rooms. */
  lastSeq?: Record<string, number> | undefined;
  /** The incarnation each lastSeq belongs to. */
  incarnations?: Record<string, string> | undefined;
  roomId?: string | undefined;
}
export interface RoomCreateInput {
  name?: string | undefined;
  password?: string | undefined;
  maxParticipants?: number | undefined;
}
export interface RoomJoinInput {
  roomCode: string;
  password?: string | undefined;
  guestName?: string | undefined;
  lastSeq?: number | undefined;
  incarnation?: string | undefined;
  /**
   * false: the room's state comes only in the ack, not also as a `room:state` event before it
   * (the SDK's choice: one copy of the state per join instead of two). Default true.
   */
  stateEvent?: boolean | undefined;
}
export interface RoomLeaveInput {
  roomId?: string | undefined;
}
export interface RoomRejoinInput {
  roomId?: string | undefined;
  roomCode?: string | undefined;
  lastSeq?: number | undefined;
  incarnation?: string | undefined;
}
export interface RoomPublishInput {
  roomId?: string | undefined;
  type: string;
  data: JsonValue;
  clientMsgId: string;
}
export interface RoomSignalInput {
  roomId?: string | undefined;
  type: string;
  data: JsonValue;
}
export interface RoomCatchupInput {
  roomId: string;
  fromSeq: number;
  incarnation?: string | undefined;
  limit?: number | undefined;
}
export interface SyncPingInput {
  clientTimestamp: number;
}
export interface SyncReportInput {
  roomId?: string | undefined;
  rttMs: number;
  offsetMs: number;
}
export interface PlaybackStartInput {
  roomId?: string | undefined;
  trackId: string;
  positionMs?: number | undefined;
}
export interface PlaybackPauseInput {
  roomId?: string | undefined;
  positionMs?: number | undefined;
}
export interface PlaybackSeekInput {
  roomId?: string | undefined;
  positionMs: number;
}
export interface PlaybackStopInput {
  roomId?: string | undefined;
}
export interface PlaybackGrantInput {
  roomId?: string | undefined;
  clientId: string;
  allowed: boolean;
}
export interface InboxAckInput {
  ids: string[];
}
export interface UserMessageInput {
  toUserId: string;
  type: string;
  data: JsonValue;
  clientMsgId?: string | undefined;
}

/** Constants of the wire contract the server validates against (docs/PROTOCOL.md "Field rules"). */
export const ROOM_CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ'; // no 0/O, 1/I/L
export const ROOM_CODE_LENGTH = 8;

import type { ErrorBody } from './errors.js';
import type * as S from './requests.js';

/**
 * The typed wire contract of namespace /sync, shared by the server
 * (`Server<ClientToServerEvents, ServerToClientEvents, …>`) and the client SDK. Every client→server request takes an ack callback answered with an `Ack<T>`.
 */

export type Ack<T> = { ok: true; data: T } | { ok: false; error: ErrorBody };
export type AckFn<T> = (response: Ack<T>) => void;

export type ParticipantStatus = 'online' | 'away';
export type Role = 'host' | 'member';

export interface Participant {
  clientId: string;
  userId: string | null;
  name: string;
  role: Role;
  status: ParticipantStatus;
  /** The host lets members drive playback; the host always can. */
  canControl: boolean;
  joinedAt: number;
}

export interface RoomInfo {
  id: string;
  /** Null for program rooms, which are named by JWT claims, not joined by code. */
  code: string | null;
  name: string;
  kind: 'room' | 'program';
  maxParticipants: number;
  hasPassword: boolean;
  createdAt: number;
  hostClientId: string | null;
}

export interface PlaybackState {
  playing: boolean;
  trackId: string | null;
  /** Position at `serverTimestamp`; while playing it advances 1 ms per server ms after `startAtServerTime`. */
  positionMs: number;
  serverTimestamp: number;
  startAtServerTime: number | null;
  syncBufferMs: number;
}

/** Fields carried by every sequenced room event. */
export interface Sequenced {
  roomId: string;
  seq: number;
}

export interface RoomStatePayload {
  room: RoomInfo;
  participants: Participant[];
  playback: PlaybackState;
  /** The room's seq at the instant of the snapshot: every later event has a higher seq. */
  seq: number;
  /**
   * Which life of the room `seq` counts in. A room that expired and was created again under the
   * same code starts its seq again under a new incarnation: a position is (incarnation, seq), and a
   * position of another incarnation can never be continued (recovered: false, snapshot).
   */
  incarnation: string;
  serverTimestamp: number;
}

export interface SnapshotPayload extends RoomStatePayload {
  /** false: the log no longer reached back to the client's lastSeq; this snapshot replaces local state. */
  recovered: boolean;
}

export interface ParticipantJoined extends Sequenced {
  participant: Participant;
}
export interface ParticipantLeft extends Sequenced {
  clientId: string;
  userId: string | null;
  /** left: the member left (room:leave, a deliberate disconnect); evicted: its grace period ran out; kicked: a backend removed it. */
  reason: 'left' | 'evicted' | 'kicked';
  /** Whether another device (clientId) of the same user is still in the room. */
  userStillPresent: boolean;
  /** Set when the leaver was host: the member that is host now (null if the room is empty). */
  newHostClientId: string | null;
}
/**
 * The batched presence of one room and window (RECONNECT_FLUSH_MS): who came back, who went away,
 * and who joined — first joins into a room that had JOIN_BATCH_THRESHOLD members or more are not
 * announced one by one (room:participant:joined) but here, as they are at the flush.
 */
export interface PresenceBatch extends Sequenced {
  /** clientIds back online. */
  returned: string[];
  /** clientIds away (disconnected, within their grace period). */
  away: string[];
  /**
   * Members that joined the room in this window and were not announced before, as they are at the
   * flush. Always sent by this server (possibly empty); absent in batches logged by servers older
   * than batched joins.
   */
  joined?: Participant[];
}
export interface RoomEvent extends Sequenced {
  type: string;
  data: unknown;
  /** clientId of the publisher, or `service:<name>` for the HTTP publish API. */
  from: string;
  ts: number;
}
export interface PlaybackEvent extends Sequenced, PlaybackState {
  action: 'start' | 'pause' | 'seek' | 'stop';
  by: string;
}
export interface PlaybackControlChanged extends Sequenced {
  clientId: string;
  canControl: boolean;
}
export interface PlaybackSync {
  roomId: string;
  trackId: string;
  positionMs: number;
  serverTimestamp: number;
}

/** The names of events that are sequenced and logged, with their payloads. */
export interface SequencedEvents {
  'room:participant:joined': ParticipantJoined;
  'room:participant:left': ParticipantLeft;
  'room:presence': PresenceBatch;
  'room:event': RoomEvent;
  'playback:start': PlaybackEvent;
  'playback:pause': PlaybackEvent;
  'playback:seek': PlaybackEvent;
  'playback:stop': PlaybackEvent;
  'playback:control': PlaybackControlChanged;
}
export type SequencedName = keyof SequencedEvents;
/** Runtime list of the sequenced event names (clients subscribe to these and order them by seq). */
export const SEQUENCED_EVENTS: readonly SequencedName[] = [
  'room:participant:joined',
  'room:participant:left',
  'room:presence',
  'room:event',
  'playback:start',
  'playback:pause',
  'playback:seek',
  'playback:stop',
  'playback:control',
];
/** One entry of a room's catch-up log, exactly as it was broadcast. */
export type LogEntry = { [K in SequencedName]: { seq: number; name: K; payload: SequencedEvents[K]; ts: number } }[SequencedName];

export interface SessionPayload {
  clientId: string;
  userId: string | null;
  /** Only on the connect that issued it: store it and present it on every reconnect. */
  sessionToken?: string;
  epoch: number;
  nodeId: string;
  serverTime: number;
  /** Program rooms (JWT `rooms` claim) this socket was subscribed to on connect. */
  programRooms: string[];
  /**
   * Optional protocol features this worker understands (absent from older servers): a client uses
   * one only on a connection whose session lists it, so a rolling deploy never sends a worker a
   * field it would refuse. `'join.stateEvent'`: room:join accepts `stateEvent: false`.
   */
  features?: string[];
}

/** The optional protocol features this server version offers (SessionPayload.features). */
export const SERVER_FEATURES = ['join.stateEvent'] as const;

export interface JoinResult extends RoomStatePayload {
  self: Participant;
}
export interface RejoinResult {
  roomId: string;
  recovered: boolean;
  /** Number of events replayed before this ack (each was emitted under its own name). */
  replayed: number;
  /** True when more missed events remain than one page: call room:catchup from `seq` of the last one. */
  more: boolean;
  seq: number;
  /** The room's incarnation: `seq` and every replayed event belong to it. */
  incarnation: string;
}
export interface CatchupResult {
  roomId: string;
  events: LogEntry[];
  /** The room's current seq. */
  seq: number;
  /** The room's incarnation. */
  incarnation: string;
  /** false: fromSeq is older than the log reaches, or belongs to another incarnation; fetch a snapshot with room:rejoin. */
  recovered: boolean;
  more: boolean;
}
/**
 * The room's head, sent periodically (ROOM_HEAD_INTERVAL_MS) to the sockets of rooms with recent
 * activity, by the worker that holds them, read from Redis: a client connected all along notices a
 * lost broadcast within one interval instead of at the room's next event.
 */
export interface RoomHead {
  roomId: string;
  incarnation: string;
  seq: number;
}
export interface PublishResult {
  seq: number;
  /** true when this clientMsgId was already published; seq is the original one. */
  duplicate: boolean;
}
export interface SyncPong {
  clientTimestamp: number;
  serverReceiveTimestamp: number;
  serverTimestamp: number;
}
export interface InboxMessage {
  id: string;
  from: string;
  type: string;
  data: unknown;
  ts: number;
}
export interface RoomClosed {
  roomId: string;
  reason: 'kicked' | 'deleted';
}
export interface ShutdownNotice {
  reconnectAfterMs: number;
}

export interface ClientToServerEvents {
  'room:create': (payload: S.RoomCreateInput, ack: AckFn<RoomInfo>) => void;
  'room:join': (payload: S.RoomJoinInput, ack: AckFn<JoinResult>) => void;
  'room:leave': (payload: S.RoomLeaveInput, ack: AckFn<{ roomId: string }>) => void;
  'room:rejoin': (payload: S.RoomRejoinInput, ack: AckFn<RejoinResult>) => void;
  'room:publish': (payload: S.RoomPublishInput, ack: AckFn<PublishResult>) => void;
  'room:signal': (payload: S.RoomSignalInput, ack: AckFn<Record<string, never>>) => void;
  'room:catchup': (payload: S.RoomCatchupInput, ack: AckFn<CatchupResult>) => void;
  'sync:ping': (payload: S.SyncPingInput, ack: AckFn<SyncPong>) => void;
  'sync:report': (payload: S.SyncReportInput, ack: AckFn<{ rttMs: number }>) => void;
  'playback:start': (payload: S.PlaybackStartInput, ack: AckFn<PlaybackEvent>) => void;
  'playback:pause': (payload: S.PlaybackPauseInput, ack: AckFn<PlaybackEvent>) => void;
  'playback:seek': (payload: S.PlaybackSeekInput, ack: AckFn<PlaybackEvent>) => void;
  'playback:stop': (payload: S.PlaybackStopInput, ack: AckFn<PlaybackEvent>) => void;
  'playback:grant': (payload: S.PlaybackGrantInput, ack: AckFn<PlaybackControlChanged>) => void;
  'inbox:ack': (payload: S.InboxAckInput, ack: AckFn<{ removed: number }>) => void;
  'user:message': (payload: S.UserMessageInput, ack: AckFn<{ id: string; delivered: boolean }>) => void;
}

/**
 * A runtime list of event names that must name every key of `All`: `listing<keyof X>()([...])`
 * fails to compile when a name of X is missing from the list (the error names it), and the list
 * keeps its literal type.
 */
function listing<All extends string>() {
  return <const L extends readonly All[]>(list: L & ([Exclude<All, L[number]>] extends [never] ? unknown : { missing: Exclude<All, L[number]> })): L => list;
}

/** Runtime list of every request event (clients, docs and fuzz tests iterate it). */
export const REQUEST_EVENTS = listing<keyof ClientToServerEvents>()([
  'room:create',
  'room:join',
  'room:leave',
  'room:rejoin',
  'room:publish',
  'room:signal',
  'room:catchup',
  'sync:ping',
  'sync:report',
  'playback:start',
  'playback:pause',
  'playback:seek',
  'playback:stop',
  'playback:grant',
  'inbox:ack',
  'user:message',
]);

export interface ServerToClientEvents {
  session: (payload: SessionPayload) => void;
  'session:replaced': (payload: { clientId: string; reason: 'takeover' }) => void;
  'server:shutdown': (payload: ShutdownNotice) => void;
  'room:state': (payload: RoomStatePayload) => void;
  'room:state_snapshot': (payload: SnapshotPayload) => void;
  /** After an automatic rejoin requested by the handshake (`auth.roomId`). */
  'room:rejoined': (payload: RejoinResult) => void;
  'room:participant:joined': (payload: ParticipantJoined) => void;
  'room:participant:left': (payload: ParticipantLeft) => void;
  'room:presence': (payload: PresenceBatch) => void;
  'room:event': (payload: RoomEvent) => void;
  'room:signal': (payload: { roomId: string; from: string; type: string; data: unknown }) => void;
  'room:error': (payload: ErrorBody) => void;
  /** This connection is out of the room for good: a backend kicked its member, or deleted the room. */
  'room:closed': (payload: RoomClosed) => void;
  /** Unsequenced: the room's current position; fill up to `seq` (catch-up) or resync on another incarnation. */
  'room:head': (payload: RoomHead) => void;
  'playback:start': (payload: PlaybackEvent) => void;
  'playback:pause': (payload: PlaybackEvent) => void;
  'playback:seek': (payload: PlaybackEvent) => void;
  'playback:stop': (payload: PlaybackEvent) => void;
  'playback:control': (payload: PlaybackControlChanged) => void;
  'playback:sync': (payload: PlaybackSync) => void;
  'sync:pong': (payload: SyncPong) => void;
  'inbox:message': (payload: InboxMessage) => void;
}

/** Runtime list of every server→client event (the k6 library is checked against it). */
export const SERVER_EVENTS = listing<keyof ServerToClientEvents>()([
  'session',
  'session:replaced',
  'server:shutdown',
  'room:state',
  'room:state_snapshot',
  'room:rejoined',
  'room:participant:joined',
  'room:participant:left',
  'room:presence',
  'room:event',
  'room:signal',
  'room:error',
  'room:closed',
  'room:head',
  'playback:start',
  'playback:pause',
  'playback:seek',
  'playback:stop',
  'playback:control',
  'playback:sync',
  'sync:pong',
  'inbox:message',
]);

export const NAMESPACE = '/sync';

/**
 * Tether client SDK: `import { TetherClient } from '@tether/client'`.
 * Runs in Node ≥ 20 and browsers (standalone bundle: @tether/client/standalone).
 */
export { TetherClient, randomId, type WireSocket } from './client.js';
export { Room, type RoomStatus } from './room.js';
export type { HistoryPage } from './history.js';
export { ReorderBuffer, type Released, type Hole, type PushOutcome } from './reorder.js';
export { backoffCeiling, backoffDelay, shutdownDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { memoryStorage, webStorage, localStorageAdapter, type StorageAdapter, type StorageOption, type WebStorageLike } from './storage.js';
export { ClientError, CLIENT_ERRORS, isRetryable, type ClientErrorCode } from './errors.js';
export { Emitter, type Listener } from './emitter.js';
export * from './playback.js';
export type * from './types.js';
export type {
  InboxMessage,
  LogEntry,
  Participant,
  ParticipantJoined,
  ParticipantLeft,
  PlaybackControlChanged,
  PlaybackEvent,
  PlaybackState,
  PlaybackSync,
  PresenceBatch,
  RoomEvent,
  RoomInfo,
  SessionPayload,
} from '@tether/protocol';
export type { ErrorCode, ErrorBody } from '@tether/protocol';

import { randomBytes } from 'node:crypto';
import type { Participant, PlaybackState, RoomInfo, RoomStatePayload } from '@tether/protocol';
import { flatToObject, type ScriptReply } from '../redis/scripts.js';

/** Redis representations → wire types. Internal fields (epoch, password hash) never leave here. */

export function roomInfo(meta: Record<string, string>): RoomInfo {
  return {
    id: meta.id ?? '',
    code: meta.kind === 'program' ? null : meta.code || null,
    name: meta.name ?? '',
    kind: meta.kind === 'program' ? 'program' : 'room',
    maxParticipants: Number(meta.maxParticipants ?? 0),
    hasPassword: Boolean(meta.passwordHash),
    createdAt: Number(meta.createdAt ?? 0),
    hostClientId: meta.hostClientId || null,
  };
}

export function participant(json: string): Participant {
  const p = JSON.parse(json) as Participant;
  return {
    clientId: p.clientId,
    userId: p.userId ?? null,
    name: p.name,
    role: p.role,
    status: p.status,
    canControl: Boolean(p.canControl),
    joinedAt: p.joinedAt,
  };
}

export const IDLE_PLAYBACK: Omit<PlaybackState, 'serverTimestamp'> = {
  playing: false,
  trackId: null,
  positionMs: 0,
  startAtServerTime: null,
  syncBufferMs: 0,
};

/**
 * Playback as stored (hash of the last command) → the state at `now`: while playing, the position
 * advances with server time from startAtServerTime, so a late joiner starts at the right place.
 */
export function playbackAt(stored: Record<string, string>, now: number): PlaybackState {
  if (!stored.trackId) return { ...IDLE_PLAYBACK, serverTimestamp: now };
  const playing = stored.playing === '1';
  const basePosition = Number(stored.positionMs ?? 0);
  const startAt = stored.startAtServerTime ? Number(stored.startAtServerTime) : null;
  const positionMs = playing && startAt !== null ? basePosition + Math.max(0, now - startAt) : basePosition;
  return {
    playing,
    trackId: stored.trackId,
    positionMs,
    serverTimestamp: now,
    startAtServerTime: startAt,
    syncBufferMs: Number(stored.syncBufferMs ?? 0),
  };
}

/** The room's incarnation as stored (see room_incarnation in common.lua: the same fallback). */
export function incarnationOf(meta: Record<string, string>): string {
  return meta.inc || `c${meta.createdAt ?? '0'}`;
}

/** A fresh incarnation: creation time plus randomness, so two lives of one code never share one. */
export function newIncarnation(now: number): string {
  return `${now.toString(36)}${randomBytes(4).toString('base64url')}`;
}

export function roomState(metaFlat: ScriptReply | undefined, members: ScriptReply | undefined, playbackFlat: ScriptReply | undefined, now: number): RoomStatePayload {
  const meta = flatToObject(metaFlat);
  return {
    room: roomInfo(meta),
    participants: Array.isArray(members) ? members.map((m) => participant(String(m))) : [],
    playback: playbackAt(flatToObject(playbackFlat), now),
    seq: Number(meta.seq ?? 0),
    incarnation: incarnationOf(meta),
    serverTimestamp: now,
  };
}

import type { Participant, PlaybackState, RoomInfo, RoomStatePayload } from '@tether/protocol';
import type { SequencedEntry } from './types.js';

/**
 * A room's state as of one seq: what a `room:state` snapshot carries, advanced event by event.
 *
 * Pure: `reduceRoom` returns a new model and never touches its input, so a room's state is a
 * function of (snapshot, events after it) and can be tested without a connection. Members are a
 * Map copied only when membership changes (a 5,000-member room pays for a copy per join/leave or
 * presence batch, not per app event; joins into large rooms arrive batched, one copy per batch).
 */
export interface RoomModel {
  readonly info: RoomInfo;
  readonly members: ReadonlyMap<string, Participant>;
  readonly playback: PlaybackState;
  readonly serverTimestamp: number;
  /** Seq of the last event the model includes. */
  readonly seq: number;
  /** The room life `seq` counts in; null when the server did not say (older servers, tests). */
  readonly incarnation: string | null;
}

export function modelFromState(state: RoomStatePayload): RoomModel {
  return {
    info: state.room,
    members: new Map(state.participants.map((p) => [p.clientId, p])),
    playback: state.playback,
    serverTimestamp: state.serverTimestamp,
    seq: state.seq,
    incarnation: typeof state.incarnation === 'string' ? state.incarnation : null,
  };
}

/** The model after `entry` (the caller applies entries in seq order, each once). */
export function reduceRoom(model: RoomModel, entry: SequencedEntry): RoomModel {
  const next = { ...model, seq: entry.seq };
  switch (entry.name) {
    case 'room:event':
      return next;
    case 'room:participant:joined': {
      const members = new Map(model.members);
      members.set(entry.payload.participant.clientId, entry.payload.participant);
      return { ...next, members };
    }
    case 'room:participant:left': {
      const members = new Map(model.members);
      members.delete(entry.payload.clientId);
      // When the host leaves, the server hands the room to the longest-present member.
      const newHost = entry.payload.newHostClientId;
      let info = model.info;
      if (newHost) {
        const p = members.get(newHost);
        if (p) members.set(newHost, { ...p, role: 'host', canControl: true });
        info = { ...info, hostClientId: newHost };
      }
      return { ...next, members, info };
    }
    case 'room:presence': {
      let members: Map<string, Participant> | null = null;
      const set = (id: string, status: Participant['status']) => {
        const p = (members ?? model.members).get(id);
        if (!p || p.status === status) return;
        members ??= new Map(model.members);
        members.set(id, { ...p, status });
      };
      // Joins batched by the server (rooms at or above its JOIN_BATCH_THRESHOLD): the participant as
      // it is at the flush, replacing what a snapshot may already hold (the joiner itself, or a
      // member whose join was pending when this client's snapshot was taken). Batches logged by
      // older servers have no `joined`.
      for (const p of entry.payload.joined ?? []) {
        members ??= new Map(model.members);
        members.set(p.clientId, p);
      }
      for (const id of entry.payload.returned) set(id, 'online');
      for (const id of entry.payload.away) set(id, 'away');
      return members ? { ...next, members } : next;
    }
    case 'playback:start':
    case 'playback:pause':
    case 'playback:seek':
    case 'playback:stop': {
      const { playing, trackId, positionMs, serverTimestamp, startAtServerTime, syncBufferMs } = entry.payload;
      return { ...next, playback: { playing, trackId, positionMs, serverTimestamp, startAtServerTime, syncBufferMs } };
    }
    case 'playback:control': {
      const p = model.members.get(entry.payload.clientId);
      if (!p) return next;
      const members = new Map(model.members);
      members.set(p.clientId, { ...p, canControl: entry.payload.canControl });
      return { ...next, members };
    }
  }
}

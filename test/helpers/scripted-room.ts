import { Room, type RoomHost } from '../../packages/client/src/room.ts';
import { ClientError } from '../../packages/client/src/errors.ts';
import type { RoomEvent, RoomStatePayload } from '@tether/protocol';

/**
 * A Room driven by a scripted server, for unit tests of the SDK's room logic: `handlers[event]`
 * answers each request the room sends (throw a ClientError to refuse). Nothing listens unless
 * the test attaches listeners itself.
 */
export function scriptedRoom(handlers: Record<string, (payload: any, room: Room) => unknown>, settings: Partial<RoomHost['settings']> = {}) {
  const calls: { event: string; payload: any }[] = [];
  let room!: Room;
  const host = {
    connEpoch: 1,
    connected: true,
    clientId: 'me-000000',
    settings: { holeWaitMs: 10, catchupLimit: 100, retry: { baseMs: 5, maxMs: 20 }, rejoinAfterEviction: true, random: () => 0.5, ...settings },
    async request(event: string, payload: unknown) {
      calls.push({ event, payload });
      const h = handlers[event];
      if (!h) throw new ClientError('INTERNAL_ERROR', `no handler for ${event}`);
      return (await h(payload, room)) as never;
    },
    newMessageId: () => `m${calls.length}`,
    roomClosed: () => undefined,
    queueLeave: () => undefined,
    serverNow: () => Date.now(),
    roomLive: () => undefined,
  } satisfies RoomHost as RoomHost & { connEpoch: number; connected: boolean };
  room = new Room(host, ROOM, 'room');
  return {
    room,
    calls,
    host,
    /** Simulates a reconnect: the connection drops, a new handshake completes. */
    reconnect() {
      room.onDisconnected();
      host.connEpoch++;
      room.resume();
    },
  };
}

export const ROOM = 'ABCDEFGH';

export const state = (seq: number, incarnation = 'inc-A'): RoomStatePayload => ({
  room: { id: ROOM, code: ROOM, name: 'r', kind: 'room', maxParticipants: 10, hasPassword: false, createdAt: 0, hostClientId: null },
  participants: [],
  playback: { playing: false, trackId: null, positionMs: 0, serverTimestamp: 0, startAtServerTime: null, syncBufferMs: 0 },
  seq,
  incarnation,
  serverTimestamp: 0,
});
export const ev = (seq: number): RoomEvent => ({ roomId: ROOM, seq, type: 't', data: seq, from: 'x', ts: 0 });
export const entry = (seq: number) => ({ name: 'room:event' as const, seq, payload: ev(seq) });
export const logEntry = (seq: number) => ({ ...entry(seq), ts: 0 });

/** Resolves after the current macrotask (and everything queued before it) ran. */
export const nextTask = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

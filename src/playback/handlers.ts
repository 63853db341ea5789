import type { SyncPong } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import { PlaybackGrant, PlaybackPause, PlaybackSeek, PlaybackStart, PlaybackStop, SyncPing, SyncReport } from '../protocol/schemas.js';
import { RateLimit } from '../events/rate-limit.js';
import { request, type RequestDef } from '../transport/handle.js';
import type { TetherSocket } from '../transport/types.js';
import { canControlPlayback, clampRtt } from './rules.js';
import type { CommandInput, PlaybackService } from './service.js';
import { targetRoom } from '../rooms/target.js';

/**
 * A client estimating its clock offset sends a burst of ~8 pings, then one every few seconds.
 * The bucket allows that with room to spare and stops a loop from costing a worker anything.
 */
const SYNC_RATE_PER_SEC = 10;
const SYNC_BURST = 20;

/**
 * Program rooms are refused before touching Redis (the Lua refuses them too). Throws, so callers
 * must be async: handle() expects a rejected promise, not a synchronous throw.
 */
function controlRoom(socket: TetherSocket, roomId: string | undefined): string {
  const target = targetRoom(socket, roomId);
  if (target.program && canControlPlayback({ roomKind: 'program', participant: null }) !== 'allow') {
    throw new TetherError('UNAUTHORIZED', 'playback in program rooms cannot be controlled over the socket');
  }
  return target.roomId;
}

export function playbackRequests(playback: PlaybackService): RequestDef[] {
  const syncLimit = new RateLimit('sync', SYNC_RATE_PER_SEC, SYNC_BURST, 'clock-sync requests');
  const command = (action: 'start' | 'pause' | 'seek' | 'stop') => (socket: TetherSocket, roomId: string | undefined, input: CommandInput) =>
    playback.command(controlRoom(socket, roomId), socket.data.clientId, action, input);

  return [
    request('sync:ping', SyncPing, async (socket, input, acked) => {
      const serverReceiveTimestamp = Date.now();
      syncLimit.check(socket);
      // Answered once: on the ack for request/response clients, as sync:pong for clients that
      // fire pings without an ack callback.
      const pong: SyncPong = { clientTimestamp: input.clientTimestamp, serverReceiveTimestamp, serverTimestamp: Date.now() };
      if (!acked) socket.emit('sync:pong', pong);
      return pong;
    }),

    request('sync:report', SyncReport, async (socket, input) => {
      syncLimit.check(socket);
      const { roomId, program } = targetRoom(socket, input.roomId);
      // offsetMs is validated but not stored: a client's offset matters only to that client.
      const rttMs = clampRtt(input.rttMs);
      await playback.reportRtt(roomId, socket.data.clientId, rttMs, !program);
      return { rttMs };
    }),

    request('playback:start', PlaybackStart, async (socket, input) =>
      command('start')(socket, input.roomId, { trackId: input.trackId, positionMs: input.positionMs }),
    ),
    request('playback:pause', PlaybackPause, async (socket, input) =>
      command('pause')(socket, input.roomId, input.positionMs === undefined ? {} : { positionMs: input.positionMs }),
    ),
    request('playback:seek', PlaybackSeek, async (socket, input) => command('seek')(socket, input.roomId, { positionMs: input.positionMs })),
    request('playback:stop', PlaybackStop, async (socket, input) => command('stop')(socket, input.roomId, {})),
    request('playback:grant', PlaybackGrant, async (socket, input) =>
      playback.grant(controlRoom(socket, input.roomId), socket.data.clientId, input.clientId, input.allowed),
    ),
  ];
}

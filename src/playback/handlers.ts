import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { SyncPong } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import { PlaybackGrant, PlaybackPause, PlaybackSeek, PlaybackStart, PlaybackStop, SyncPing, SyncReport } from '../protocol/schemas.js';
import { TokenBucket } from '../events/rate-limit.js';
import { handle } from '../transport/handle.js';
import type { TetherSocket } from '../transport/types.js';
import { canControlPlayback, clampRtt } from './rules.js';
import type { PlaybackService } from './service.js';
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

export function registerPlaybackHandlers(socket: TetherSocket, playback: PlaybackService, log: Logger): void {
  const syncBucket = new TokenBucket(SYNC_RATE_PER_SEC, SYNC_BURST, Date.now());
  const limit = () => {
    if (!syncBucket.take(Date.now())) {
      metrics.rateLimited.inc({ kind: 'sync' });
      throw new TetherError('RATE_LIMITED', `at most ${SYNC_RATE_PER_SEC} clock-sync requests per second`);
    }
  };

  handle(socket, log, 'sync:ping', SyncPing, async (input) => {
    const serverReceiveTimestamp = Date.now();
    limit();
    // Answered twice on purpose: the ack for request/response clients, sync:pong for clients that
    // fire pings without an ack callback. Both carry the same stamps.
    const pong: SyncPong = { clientTimestamp: input.clientTimestamp, serverReceiveTimestamp, serverTimestamp: Date.now() };
    socket.emit('sync:pong', pong);
    return pong;
  });

  handle(socket, log, 'sync:report', SyncReport, async (input) => {
    limit();
    const { roomId, program } = targetRoom(socket, input.roomId);
    // offsetMs is validated but not stored: a client's offset matters only to that client.
    const rttMs = clampRtt(input.rttMs);
    await playback.reportRtt(roomId, socket.data.clientId, rttMs, !program);
    return { rttMs };
  });

  handle(socket, log, 'playback:start', PlaybackStart, async (input) =>
    playback.command(controlRoom(socket, input.roomId), socket.data.clientId, 'start', { trackId: input.trackId, positionMs: input.positionMs }),
  );
  handle(socket, log, 'playback:pause', PlaybackPause, async (input) =>
    playback.command(controlRoom(socket, input.roomId), socket.data.clientId, 'pause', input.positionMs === undefined ? {} : { positionMs: input.positionMs }),
  );
  handle(socket, log, 'playback:seek', PlaybackSeek, async (input) =>
    playback.command(controlRoom(socket, input.roomId), socket.data.clientId, 'seek', { positionMs: input.positionMs }),
  );
  handle(socket, log, 'playback:stop', PlaybackStop, async (input) => playback.command(controlRoom(socket, input.roomId), socket.data.clientId, 'stop'));
  handle(socket, log, 'playback:grant', PlaybackGrant, async (input) =>
    playback.grant(controlRoom(socket, input.roomId), socket.data.clientId, input.clientId, input.allowed),
  );
}

import type { SyncPong } from '@tether/protocol';
import { TetherError } from '@tether/protocol';
import { PlaybackGrant, PlaybackPause, PlaybackSeek, PlaybackStart, PlaybackStop, SyncPing, SyncReport } from '../protocol/schemas.js';
import { RateLimit } from '../events/rate-limit.js';
import type { Conn } from '../fanout/port.js';
import { request, type RequestDef } from '../fanout/requests.js';
import { targetRoom } from '../fanout/target.js';
import { clampRtt } from './rules.js';
import type { CommandInput, PlaybackService } from './service.js';

/**
 * A client estimating its clock offset sends a burst of ~8 pings, then one every few seconds.
 * The bucket allows that with room to spare and stops a loop from costing a worker anything.
 */
const SYNC_RATE_PER_SEC = 10;
const SYNC_BURST = 20;

/**
 * Program rooms are refused before touching Redis; who may control playback in a code room is
 * decided by playbackCommand.lua, atomically with the command.
 */
function controlRoom(conn: Conn, roomId: string | undefined): string {
  const target = targetRoom(conn, roomId);
  if (target.program) throw new TetherError('UNAUTHORIZED', 'playback in program rooms cannot be controlled over the socket');
  return target.roomId;
}

export function playbackRequests(playback: PlaybackService): RequestDef[] {
  const syncLimit = new RateLimit('sync', SYNC_RATE_PER_SEC, SYNC_BURST, 'clock-sync requests');
  const command = (action: 'start' | 'pause' | 'seek' | 'stop') => (conn: Conn, roomId: string | undefined, input: CommandInput) =>
    playback.command(controlRoom(conn, roomId), conn.data.clientId, action, input);

  return [
    request('sync:ping', SyncPing, async (conn, input, acked) => {
      const serverReceiveTimestamp = Date.now();
      syncLimit.check(conn.data);
      // Answered once: on the ack for request/response clients, as sync:pong for clients that
      // fire pings without an ack callback.
      const pong: SyncPong = { clientTimestamp: input.clientTimestamp, serverReceiveTimestamp, serverTimestamp: Date.now() };
      if (!acked) conn.emit('sync:pong', pong);
      return pong;
    }),

    request('sync:report', SyncReport, async (conn, input) => {
      syncLimit.check(conn.data);
      const { roomId, program } = targetRoom(conn, input.roomId);
      // offsetMs is validated but not stored: a client's offset matters only to that client.
      const rttMs = clampRtt(input.rttMs);
      await playback.reportRtt(roomId, conn.data.clientId, rttMs, !program);
      return { rttMs };
    }),

    request('playback:start', PlaybackStart, async (conn, input) =>
      command('start')(conn, input.roomId, { trackId: input.trackId, positionMs: input.positionMs }),
    ),
    request('playback:pause', PlaybackPause, async (conn, input) =>
      command('pause')(conn, input.roomId, input.positionMs === undefined ? {} : { positionMs: input.positionMs }),
    ),
    request('playback:seek', PlaybackSeek, async (conn, input) => command('seek')(conn, input.roomId, { positionMs: input.positionMs })),
    request('playback:stop', PlaybackStop, async (conn, input) => command('stop')(conn, input.roomId, {})),
    request('playback:grant', PlaybackGrant, async (conn, input) =>
      playback.grant(controlRoom(conn, input.roomId), conn.data.clientId, input.clientId, input.allowed),
    ),
  ];
}

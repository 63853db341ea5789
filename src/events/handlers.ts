import type { Config } from '../config/index.js';
import { metrics } from '../observability/metrics.js';
import { socketRoom } from '../protocol/events.js';
import { RoomCatchup, RoomPublish, RoomSignal } from '../protocol/schemas.js';
import type { CatchupService } from '../catchup/service.js';
import { targetRoom } from '../rooms/target.js';
import { request, type RequestDef } from '../transport/handle.js';
import type { Limits } from '../limits/limits.js';
import { RateLimit } from './rate-limit.js';
import type { EventService } from './service.js';

export function eventRequests(config: Config, events: EventService, catchup: CatchupService, limits: Limits): RequestDef[] {
  const { publishRatePerSec, publishBurst, signalRatePerSec } = config.events;
  const publishLimit = new RateLimit('publish', publishRatePerSec, publishBurst, 'publishes');
  const signalLimit = new RateLimit('signal', signalRatePerSec, signalRatePerSec * 2, 'signals');

  return [
    request('room:publish', RoomPublish, async (socket, input) => {
      const { roomId, program } = targetRoom(socket, input.roomId);
      publishLimit.check(socket);
      return events.publish({
        roomId,
        type: input.type,
        data: input.data,
        from: socket.data.clientId,
        dedupKey: `${socket.data.clientId}|${input.clientMsgId}`,
        requireMember: !program,
        budget: socket.data.userId ? `u:${socket.data.userId}` : `c:${socket.data.clientId}`,
        source: 'client',
      });
    }),

    request('room:signal', RoomSignal, async (socket, input) => {
      const { roomId } = targetRoom(socket, input.roomId);
      signalLimit.check(socket);
      events.encodeData(input.data); // size check only: signals are never stored
      await limits.signal(roomId, socket.data.userId ? `u:${socket.data.userId}` : `c:${socket.data.clientId}`);
      socket.to(socketRoom(roomId)).emit('room:signal', { roomId, from: socket.data.clientId, type: input.type, data: input.data ?? null });
      metrics.signals.inc();
      return {};
    }),

    request('room:catchup', RoomCatchup, async (socket, input) => {
      targetRoom(socket, input.roomId);
      await limits.catchup(input.roomId, socket.data.clientId);
      const result = await catchup.read(input.roomId, input.fromSeq, input.incarnation, input.limit);
      metrics.catchupEvents.observe(result.events.length);
      return result;
    }),
  ];
}

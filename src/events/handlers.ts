import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { socketRoom } from '../protocol/events.js';
import { TetherError } from '../protocol/errors.js';
import { RoomCatchup, RoomPublish, RoomSignal } from '../protocol/schemas.js';
import type { CatchupService } from '../catchup/service.js';
import { handle } from '../transport/handle.js';
import type { TetherSocket } from '../transport/types.js';
import { TokenBucket } from './rate-limit.js';
import type { EventService } from './service.js';
import { targetRoom } from '../rooms/target.js';

export function registerEventHandlers(socket: TetherSocket, config: Config, events: EventService, catchup: CatchupService, log: Logger): void {
  const now = Date.now();
  const publishBucket = new TokenBucket(config.events.publishRatePerSec, config.events.publishBurst, now);
  const signalBucket = new TokenBucket(config.events.signalRatePerSec, config.events.signalRatePerSec * 2, now);

  handle(socket, log, 'room:publish', RoomPublish, async (input) => {
    const { roomId, program } = targetRoom(socket, input.roomId);
    if (!publishBucket.take(Date.now())) {
      metrics.rateLimited.inc({ kind: 'publish' });
      throw new TetherError('RATE_LIMITED', `at most ${config.events.publishRatePerSec} publishes per second`);
    }
    return events.publish({
      roomId,
      type: input.type,
      data: input.data,
      from: socket.data.clientId,
      dedupKey: `${socket.data.clientId}|${input.clientMsgId}`,
      requireMember: !program,
      source: 'client',
    });
  });

  handle(socket, log, 'room:signal', RoomSignal, async (input) => {
    const { roomId } = targetRoom(socket, input.roomId);
    if (!signalBucket.take(Date.now())) {
      metrics.rateLimited.inc({ kind: 'signal' });
      throw new TetherError('RATE_LIMITED', `at most ${config.events.signalRatePerSec} signals per second`);
    }
    events.encodeData(input.data); // size check only: signals are never stored
    socket.to(socketRoom(roomId)).emit('room:signal', { roomId, from: socket.data.clientId, type: input.type, data: input.data ?? null });
    metrics.signals.inc();
    return {};
  });

  handle(socket, log, 'room:catchup', RoomCatchup, async (input) => {
    targetRoom(socket, input.roomId);
    const result = await catchup.read(input.roomId, input.fromSeq, input.limit);
    metrics.catchupEvents.observe(result.events.length);
    return result;
  });
}

import type { Config } from '../config/index.js';
import { request, type RequestDef } from '../fanout/requests.js';
import type { Limits } from '../limits/limits.js';
import { targetRoom } from '../fanout/target.js';
import { metrics } from '../observability/metrics.js';
import { RoomCatchup, RoomPublish, RoomSignal } from '../protocol/schemas.js';
import { RateLimit } from './rate-limit.js';
import type { EventService } from './service.js';

/** Whose budgets a connection's requests take: a user's devices share one, a guest is its clientId. */
export function budgetOf(data: { userId: string | null; clientId: string }): string {
  return data.userId ? `u:${data.userId}` : `c:${data.clientId}`;
}

export function eventRequests(config: Config, events: EventService, limits: Limits): RequestDef[] {
  const { publishRatePerSec, publishBurst, signalRatePerSec } = config.events;
  const publishLimit = new RateLimit('publish', publishRatePerSec, publishBurst, 'publishes');
  const signalLimit = new RateLimit('signal', signalRatePerSec, signalRatePerSec * 2, 'signals');

  return [
    request('room:publish', RoomPublish, async (conn, input) => {
      const { roomId, program } = targetRoom(conn, input.roomId);
      publishLimit.check(conn.data);
      return events.publish({
        roomId,
        type: input.type,
        data: input.data,
        from: conn.data.clientId,
        dedupKey: `${conn.data.clientId}|${input.clientMsgId}`,
        requireMember: !program,
        budget: budgetOf(conn.data),
        source: 'client',
      });
    }),

    request('room:signal', RoomSignal, async (conn, input) => {
      const { roomId } = targetRoom(conn, input.roomId);
      signalLimit.check(conn.data);
      events.encodeData(input.data); // size check only: signals are never stored
      await limits.signal(roomId, budgetOf(conn.data));
      conn.toOthersInRoom(roomId, 'room:signal', { roomId, from: conn.data.clientId, type: input.type, data: input.data ?? null });
      metrics.signals.inc();
      return {};
    }),

    request('room:catchup', RoomCatchup, async (conn, input) => {
      targetRoom(conn, input.roomId);
      await limits.catchup(input.roomId, conn.data.clientId);
      return events.read(input.roomId, input.fromSeq, input.incarnation, input.limit);
    }),
  ];
}

import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import { TetherError } from '../protocol/errors.js';
import { InboxAck, UserMessage } from '../protocol/schemas.js';
import { TokenBucket } from '../events/rate-limit.js';
import { handle } from '../transport/handle.js';
import type { TetherSocket } from '../transport/types.js';
import type { InboxService } from './service.js';

/**
 * Direct messages land in another person's inbox and survive there for INBOX_TTL_MS, so a loop
 * costs the recipient, not just the sender: a lower default budget (MESSAGE_RATE_PER_SEC) than
 * room publishes. Per socket, like every other limit (no Redis round trip per message).
 */
export function registerInboxHandlers(socket: TetherSocket, config: Config, inbox: InboxService, log: Logger): void {
  const { messageRatePerSec, messageBurst } = config.inbox;
  const bucket = new TokenBucket(messageRatePerSec, messageBurst, Date.now());

  handle(socket, log, 'user:message', UserMessage, async (input) => {
    const from = socket.data.userId;
    if (!from) throw new TetherError('UNAUTHORIZED', 'direct messages need an authenticated user (connect with a JWT)');
    if (!bucket.take(Date.now())) {
      metrics.rateLimited.inc({ kind: 'message' });
      throw new TetherError('RATE_LIMITED', `at most ${messageRatePerSec} direct messages per second`);
    }
    const { id, delivered } = await inbox.send({
      toUserId: input.toUserId,
      from,
      type: input.type,
      data: input.data,
      dedupKey: input.clientMsgId ? `${from}|${input.clientMsgId}` : null,
    });
    return { id, delivered };
  });

  handle(socket, log, 'inbox:ack', InboxAck, async (input) => {
    const userId = socket.data.userId;
    if (!userId) throw new TetherError('UNAUTHORIZED', 'guests have no inbox');
    return { removed: await inbox.ack(userId, input.ids) };
  });

  socket.on('disconnect', () => {
    inbox.disconnected(socket).catch((err: unknown) => log.error({ err }, 'inbox disconnect handling failed'));
  });
}

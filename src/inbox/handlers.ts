import type { Config } from '../config/index.js';
import { TetherError } from '@tether/protocol';
import { InboxAck, UserMessage } from '../protocol/schemas.js';
import { RateLimit } from '../events/rate-limit.js';
import { request, type RequestDef } from '../fanout/requests.js';
import type { InboxService } from './service.js';

/**
 * Direct messages land in another person's inbox and survive there for INBOX_TTL_MS, so a loop
 * costs the recipient, not just the sender: a lower default budget (MESSAGE_RATE_PER_SEC) than
 * room publishes.
 */
export function inboxRequests(config: Config, inbox: InboxService): RequestDef[] {
  const { messageRatePerSec, messageBurst } = config.inbox;
  const messageLimit = new RateLimit('message', messageRatePerSec, messageBurst, 'direct messages');

  return [
    request('user:message', UserMessage, async (conn, input) => {
      const from = conn.data.userId;
      if (!from) throw new TetherError('UNAUTHORIZED', 'direct messages need an authenticated user (connect with a JWT)');
      messageLimit.check(conn.data);
      const { id, delivered } = await inbox.send({
        toUserId: input.toUserId,
        from,
        type: input.type,
        data: input.data,
        dedupKey: input.clientMsgId ? `${from}|${input.clientMsgId}` : null,
      });
      return { id, delivered };
    }),

    request('inbox:ack', InboxAck, async (conn, input) => {
      const userId = conn.data.userId;
      if (!userId) throw new TetherError('UNAUTHORIZED', 'guests have no inbox');
      return { removed: await inbox.ack(userId, input.ids) };
    }),
  ];
}

import type { InboxMessage } from '@tether/protocol';
import { toClientError } from './errors.js';
import type { RequestName, RequestPayload, RequestResult } from './types.js';

type Timer = ReturnType<typeof setTimeout>;

const SEEN_MAX = 2000;
const ACK_BATCH = 500;

export interface InboxDeps {
  request<E extends RequestName>(event: E, payload: RequestPayload<E>): Promise<RequestResult<E>>;
  /** A handshake completed and the socket is up. */
  connected(): boolean;
  /** The app listens for 'message'. */
  listening(): boolean;
  /** Hands a message to the app's listeners; true when none of them failed. */
  deliver(msg: InboxMessage): Promise<boolean>;
}

/**
 * User-inbox delivery: at-least-once from the server, once to the app. Ids already handled are
 * only acked again (the previous ack may have been lost). Acked after the app's listeners
 * finished; with no listener the message stays on the server for a later connection.
 */
export class Inbox {
  private readonly seen = new Set<string>();
  private acks: string[] = [];
  private timer: Timer | undefined;

  constructor(private readonly deps: InboxDeps) {}

  receive(msg: InboxMessage): void {
    if (!msg || typeof msg.id !== 'string') return;
    if (this.seen.has(msg.id)) {
      this.queueAck(msg.id);
      return;
    }
    if (!this.deps.listening()) return;
    this.seen.add(msg.id);
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value!);
    void this.deps.deliver(msg).then((ok) => {
      if (ok) this.queueAck(msg.id);
      else this.seen.delete(msg.id); // let a redelivery try again
    });
  }

  /** Sends the acks waiting for a connection (called on every handshake). */
  flush(): void {
    if (!this.deps.connected() || this.acks.length === 0) return;
    const ids = [...new Set(this.acks)];
    this.acks = [];
    for (let i = 0; i < ids.length; i += ACK_BATCH) {
      const batch = ids.slice(i, i + ACK_BATCH);
      this.deps.request('inbox:ack', { ids: batch }).catch((err: unknown) => {
        // Lost with the connection: ack on the next one. A timeout (or a server without an inbox)
        // is left alone: the server redelivers what it still holds, and redeliveries are deduped.
        const code = toClientError(err).code;
        if (code === 'DISCONNECTED' || code === 'OFFLINE') this.acks.push(...batch);
      });
    }
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private queueAck(id: string): void {
    this.acks.push(id);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, 0);
  }
}

import { backoffDelay, type BackoffOptions } from './backoff.js';
import { ClientError, toClientError } from './errors.js';
import type { OutgoingMessage, PublishStatus, RequestName, RequestPayload, RequestResult } from './types.js';

type Timer = ReturnType<typeof setTimeout>;

export class Message implements OutgoingMessage {
  status: PublishStatus = 'pending';
  seq?: number;
  duplicate?: boolean;
  error?: ClientError;
  attempts = 0;
  /** Consecutive retryable server refusals (RATE_LIMITED, INTERNAL_ERROR, NOT_IN_ROOM). */
  refusals = 0;
  retryAt = 0;
  private promise?: Promise<{ seq: number; duplicate: boolean }>;
  private settle?: { resolve(v: { seq: number; duplicate: boolean }): void; reject(e: ClientError): void };

  constructor(
    readonly clientMsgId: string,
    readonly type: string,
    readonly data: unknown,
  ) {}

  // Created on demand: a promise nobody asked for must not turn a failure into an unhandled rejection.
  sent(): Promise<{ seq: number; duplicate: boolean }> {
    if (!this.promise) {
      if (this.status === 'sent') this.promise = Promise.resolve({ seq: this.seq!, duplicate: this.duplicate ?? false });
      else if (this.status === 'failed') this.promise = Promise.reject(this.error);
      else this.promise = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    }
    return this.promise;
  }

  markSent(seq: number, duplicate: boolean): void {
    this.status = 'sent';
    this.seq = seq;
    this.duplicate = duplicate;
    this.settle?.resolve({ seq, duplicate });
  }

  markFailed(error: ClientError): void {
    this.status = 'failed';
    this.error = error;
    this.settle?.reject(error);
  }
}

export interface OutboxDeps {
  readonly roomId: string;
  /** Bumped on every handshake and disconnect (RoomHost.connEpoch). */
  connEpoch(): number;
  /** The room is live on this connection: messages may go out. */
  canSend(): boolean;
  /** The server no longer counts us as a member: rejoin (when no sync is already running). */
  rejoin(): void;
  request<E extends RequestName>(event: E, payload: RequestPayload<E>): Promise<RequestResult<E>>;
  retry: BackoffOptions;
  random: () => number;
  /** A message was queued or changed status. */
  changed(msg: Message): void;
}

/**
 * A room's publish queue: FIFO with at most one message in flight, so a room's messages from this
 * client are published in publish() order. A message keeps its clientMsgId across resends, and the
 * server answers a resend of an already published message with the original seq.
 */
export class Outbox {
  private readonly queue: Message[] = [];
  private sending = false;
  private timer: Timer | undefined;

  constructor(private readonly deps: OutboxDeps) {}

  /** Messages not yet acked by the server, oldest first. */
  get pending(): Message[] {
    return [...this.queue];
  }

  add(msg: Message): void {
    this.queue.push(msg);
    this.deps.changed(msg);
    this.flush();
  }

  flush(): void {
    if (this.sending || !this.deps.canSend() || this.timer) return;
    const msg = this.queue[0];
    if (!msg) return;
    const wait = msg.retryAt - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, wait);
      return;
    }
    this.sending = true;
    msg.attempts++;
    const epoch = this.deps.connEpoch();
    this.deps
      .request('room:publish', { roomId: this.deps.roomId, type: msg.type, data: msg.data as never, clientMsgId: msg.clientMsgId })
      .then(
        (res) => {
          this.remove(msg);
          msg.markSent(res.seq, res.duplicate);
          this.deps.changed(msg);
        },
        (err: unknown) => this.failed(msg, toClientError(err), epoch),
      )
      .finally(() => {
        this.sending = false;
        this.flush();
      });
  }

  /** The connection dropped: the backoff timer is moot, the next live room flushes again. */
  pause(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The handle closed: every queued message fails with `error`. */
  failAll(error: ClientError): void {
    this.pause();
    for (const msg of this.queue.splice(0)) {
      msg.markFailed(error);
      this.deps.changed(msg);
    }
  }

  private failed(msg: Message, e: ClientError, epoch: number): void {
    if (msg.status !== 'pending' || !this.queue.includes(msg)) return;
    switch (e.code) {
      case 'DISCONNECTED':
      case 'OFFLINE':
        // The ack may be lost with the connection: the resend after the rejoin reuses the
        // clientMsgId and the server answers with the original seq.
        return;
      case 'TIMEOUT':
        return; // resent at once by the flush that follows, same clientMsgId
      case 'NOT_IN_ROOM':
        if (++msg.refusals <= 3) {
          // The server no longer counts us as a member (evicted while the socket lingered): rejoin first.
          if (epoch === this.deps.connEpoch()) this.deps.rejoin();
          return;
        }
        break;
      default:
        if (e.retryable && ++msg.refusals <= 20) {
          msg.retryAt = Date.now() + backoffDelay(msg.refusals, this.deps.retry, this.deps.random);
          return;
        }
    }
    this.remove(msg);
    msg.markFailed(e);
    this.deps.changed(msg);
  }

  private remove(msg: Message): void {
    const i = this.queue.indexOf(msg);
    if (i >= 0) this.queue.splice(i, 1);
  }
}

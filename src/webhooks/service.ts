import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { WEBHOOK_EVENT_TYPES, type Config } from '../config/index.js';
import type { JobKind, Jobs } from '../jobs/queues.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { RedisCommands, RedisNodeCommands } from '../redis/client.js';
import { OUTBOX_INDEX_SHARDS, type Keys } from '../redis/keys.js';

export const WEBHOOK_QUEUE = 'webhooks';
export const WEBHOOK_SWEEP_QUEUE = 'webhooks-sweep';
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** One entry of an outbox, as the Lua step that changed the state wrote it. */
interface OutboxEntry {
  id: string;
  type: WebhookEventType;
  ts: number;
  data: Record<string, unknown>;
}

const DeliveryJob = z.object({
  v: z.literal(1),
  id: z.string(),
  type: z.string(),
  ts: z.number(),
  data: z.record(z.string(), z.unknown()),
  endpoint: z.string().url(),
});
type DeliveryJob = z.output<typeof DeliveryJob>;

const RELAY_BATCH = 100;
const DEAD_LETTERS_KEPT = 10_000;

/**
 * Lifecycle webhooks, the transactional-outbox way. The Lua step that changes the state (a join,
 * a leave after the grace period, a room's last member gone, a user's first or last device)
 * appends the webhook to an outbox in the same slot, atomically: no webhook describes a change
 * that did not happen, and none is lost when a worker dies right after. The worker then relays
 * the outbox into BullMQ — one job per endpoint under a stable id (the webhook-id) — and removes
 * what it relayed; an outbox a worker died before relaying is found by the sweeper (a cluster-wide
 * BullMQ scheduler) through the index of outboxes and, rarely, a SCAN for outboxes left out of it.
 * Delivery is at least once, signed the Standard Webhooks way, retried with exponential backoff,
 * and dead-lettered after WEBHOOK_MAX_ATTEMPTS.
 */
export class Webhooks {
  private readonly signer: Webhook | null;
  private sweeps = 0;

  constructor(
    private readonly config: Config,
    private readonly redis: RedisCommands,
    /** Every master: the sweeper's rare SCAN must ask each (a Cluster SCAN sees one master's keys). */
    private readonly masters: () => Promise<RedisNodeCommands[]>,
    private readonly keys: Keys,
    private readonly jobs: Jobs,
    private readonly log: Logger,
  ) {
    this.signer = config.webhooks.urls.length > 0 && config.webhooks.secret ? new Webhook(config.webhooks.secret) : null;
  }

  /** Whether Lua steps should write outbox entries at all (no endpoint configured: they cost nothing). */
  get enabled(): boolean {
    return this.signer !== null;
  }

  /** The event types that go out (WEBHOOK_EVENTS), as the scripts' filter argument. */
  get filter(): string {
    return this.enabled ? this.config.webhooks.events.join(',') : '';
  }

  /**
   * Relays in the background: a request never waits for webhook bookkeeping, and an outbox left
   * behind by a failure (or a death) is the sweeper's.
   */
  relayRoomSoon(roomId: string): void {
    if (this.enabled) this.relayRoom(roomId).catch((err: unknown) => this.log.warn({ roomId, err: (err as Error).message }, 'webhook relay failed; the sweeper retries'));
  }

  relayUserSoon(userId: string): void {
    if (this.enabled) this.relayUser(userId).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'webhook relay failed; the sweeper retries'));
  }

  /** Moves what a step just wrote to a room's outbox into the delivery queue. */
  async relayRoom(roomId: string): Promise<void> {
    if (this.enabled) await this.relay(this.keys.room(roomId).hooks);
  }

  async relayUser(userId: string): Promise<void> {
    if (this.enabled) await this.relay(this.keys.userHooks(userId));
  }

  /**
   * Relays one outbox: read a batch, enqueue each entry once per endpoint under a deterministic
   * job id, then remove exactly those entries (LREM by value: a concurrent relayer or a new entry
   * is never removed by mistake). Two relayers racing enqueue the same job ids: BullMQ keeps one.
   * The outbox is indexed while it may hold entries, so the sweeper finds it if this process dies.
   * The index is sharded (keys.webhookOutboxes): one set would be a hot key on one Cluster master,
   * written twice per lifecycle event; the outbox's own shard is written before and after.
   */
  async relay(outbox: string): Promise<number> {
    let relayed = 0;
    const index = this.keys.webhookOutboxes(this.keys.outboxShard(outbox));
    await this.redis.sAdd(index, outbox);
    for (;;) {
      const raw = await this.redis.lRange(outbox, 0, RELAY_BATCH - 1);
      for (const entryJson of raw) {
        let entry: OutboxEntry;
        try {
          entry = JSON.parse(entryJson) as OutboxEntry;
        } catch {
          this.log.error({ outbox }, 'unreadable webhook outbox entry dropped');
          await this.redis.lRem(outbox, 1, entryJson);
          continue;
        }
        await Promise.all(
          this.config.webhooks.urls.map((endpoint, i) =>
            this.jobs.add(WEBHOOK_QUEUE, `${entry.id}-e${i}`, { v: 1, id: entry.id, type: entry.type, ts: entry.ts, data: entry.data, endpoint } satisfies DeliveryJob, {
              attempts: this.config.webhooks.maxAttempts,
              backoff: { type: 'exponential', delay: this.config.webhooks.retryBaseMs },
              // Kept a day after success: a relay of the same entry within it finds the id and adds nothing.
              removeOnComplete: { age: 24 * 3600 },
              removeOnFail: { age: 7 * 24 * 3600 },
            }),
          ),
        );
        await this.redis.lRem(outbox, 1, entryJson);
        metrics.webhooksQueued.inc({ type: entry.type });
        relayed++;
      }
      if (raw.length < RELAY_BATCH) break;
    }
    if ((await this.redis.lLen(outbox)) === 0) await this.redis.sRem(index, outbox);
    return relayed;
  }

  /** The sweeper: relays every indexed outbox; every SCAN_EVERY runs also SCANs for unindexed ones. */
  async sweep(): Promise<'done'> {
    if (!this.enabled) return 'done';
    const shards = await Promise.all(Array.from({ length: OUTBOX_INDEX_SHARDS }, (_, i) => this.redis.sMembers(this.keys.webhookOutboxes(i))));
    const outboxes = new Set(shards.flat());
    if (this.sweeps++ % SCAN_EVERY === 0) {
      // A worker that died between a step and its relay left its outbox unindexed: rare, so a
      // full SCAN now and then (never on a hot path) is enough to find it — on every master, since
      // a Cluster node's SCAN returns only its own keys.
      for (const master of await this.masters()) {
        for await (const keys of master.scanIterator({ MATCH: this.keys.hooksPattern(), COUNT: 1000 })) {
          for (const key of Array.isArray(keys) ? keys : [keys]) outboxes.add(key);
        }
      }
    }
    for (const outbox of outboxes) {
      const n = await this.relay(outbox);
      if (n > 0) this.log.warn({ outbox, relayed: n }, 'webhook outbox relayed by the sweeper (a worker died before relaying it)');
    }
    return 'done';
  }

  /** Delivers one webhook to one endpoint; throws (BullMQ retries with backoff) on anything but 2xx. */
  async deliver(job: DeliveryJob): Promise<'done'> {
    if (!this.signer) throw new Error('webhooks are not configured (WEBHOOK_URLS, WEBHOOK_SECRET)');
    const body = JSON.stringify({ type: job.type, timestamp: new Date(job.ts).toISOString(), data: job.data });
    const now = new Date();
    const end = metrics.webhookDuration.startTimer();
    let status = 'error';
    try {
      const res = await fetch(job.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'tether-webhooks',
          'webhook-id': job.id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': this.signer.sign(job.id, now, body),
        },
        body,
        signal: AbortSignal.timeout(this.config.webhooks.timeoutMs),
        redirect: 'manual',
      });
      await res.arrayBuffer().catch(() => undefined);
      status = String(res.status);
      if (res.status < 200 || res.status >= 300) throw new Error(`endpoint answered HTTP ${res.status}`);
      metrics.webhookDeliveries.inc({ result: 'delivered' });
      return 'done';
    } catch (err) {
      metrics.webhookDeliveries.inc({ result: (err as Error).name === 'TimeoutError' ? 'timeout' : 'failed' });
      throw err;
    } finally {
      end({ status: status.slice(0, 1) + 'xx' });
    }
  }

  /** A delivery out of attempts: kept in a bounded dead-letter list for operators, logged, counted. */
  async deadLetter(job: DeliveryJob, reason: string): Promise<void> {
    metrics.webhookDeliveries.inc({ result: 'dead' });
    this.log.error({ webhookId: job.id, type: job.type, endpoint: job.endpoint, reason }, 'webhook dead-lettered after its last attempt');
    const dead = this.keys.webhookDeadLetters();
    await this.redis.lPush(dead, JSON.stringify({ ...job, reason, at: Date.now() }));
    await this.redis.lTrim(dead, 0, DEAD_LETTERS_KEPT - 1);
  }

  /** The sweeper's job kind (a cluster-wide scheduler runs it every WEBHOOK_SWEEP_MS). */
  sweepJobKind(): JobKind<z.ZodType> {
    return { queue: WEBHOOK_SWEEP_QUEUE, schema: z.object({ v: z.literal(1) }), concurrency: 1, perRoom: false, process: () => this.sweep() } as JobKind<z.ZodType>;
  }

  deliveryJobKind(): JobKind<typeof DeliveryJob> {
    const lockMs = this.config.webhooks.timeoutMs * 2 + 1000;
    return {
      queue: WEBHOOK_QUEUE,
      schema: DeliveryJob,
      concurrency: 20,
      // One queue (partition 0): deliveries are bounded by the endpoints, not by Redis.
      perRoom: false,
      process: (job) => this.deliver(job),
      // A worker killed mid-delivery holds the job only until its lock expires; another worker then
      // delivers it again (at least once: the receiver deduplicates by webhook-id).
      worker: { lockDuration: lockMs, stalledInterval: Math.max(1000, Math.floor(lockMs / 2)) },
      onFinalFailure: (job, err) => this.deadLetter(job, err.message),
    };
  }
}

const SCAN_EVERY = 12;

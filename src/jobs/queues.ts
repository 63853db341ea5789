import { Queue, Worker, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';

/**
 * One BullMQ queue per job kind, each with one idempotent processor. Rules every job follows
 * (../shared/STYLE.md, rule 5): a deterministic job id (no ':' — BullMQ reserves it), a versioned
 * payload validated when dequeued, and a processor that re-reads the world (the epoch) and returns
 * 'stale' when it moved on, because an active BullMQ job cannot be removed.
 *
 * Partitions. All keys of one BullMQ queue must share a hash tag (its scripts touch several at
 * once), so on a Redis Cluster one queue lives on one master. The per-room kinds (eviction, presence
 * flush, playback sync) are therefore split by room into `partitions` queues of the same name, each
 * under its own prefix `{<prefix>-bull-<i>}` (partition 0 keeps the historical `{<prefix>-bull}`,
 * so a standalone deployment with one partition sees no change), and every room's jobs go to the
 * partition its id hashes to — the same one for scheduling and cancelling, so a deterministic job
 * id stays findable. Cluster-wide kinds (the reaper) stay one queue in partition 0.
 */
export interface JobKind<S extends z.ZodType> {
  queue: string;
  schema: S;
  concurrency: number;
  /** Jobs of this kind belong to a room and are scheduled with `{ room }`: one queue per partition. */
  perRoom: boolean;
  process(data: z.output<S>): Promise<'done' | 'stale'>;
  /** Worker options beyond the defaults (a shorter lock for jobs that must be retried soon after a death). */
  worker?: { lockDuration?: number; stalledInterval?: number; drainDelay?: number };
  /** Called once when a job failed its last attempt (dead letter). */
  onFinalFailure?(data: z.output<S>, err: Error): Promise<void>;
}

/** FNV-1a of the room id: stable across processes and versions, so every worker agrees. */
export function partitionOf(room: string, partitions: number): number {
  if (partitions <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < room.length; i++) h = Math.imul(h ^ room.charCodeAt(i), 0x01000193);
  return (h >>> 0) % partitions;
}

// Kept jobs only cost memory; failed ones are kept a while for inspection.
const DEFAULT_JOB_OPTIONS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: { age: 3600, count: 1000 },
  attempts: 5,
  backoff: { type: 'exponential', delay: 200 },
};

/** Where a job goes: the partition of its room, or partition 0 for cluster-wide jobs. */
export interface JobTarget {
  room?: string;
}

export class Jobs {
  /** `<partition>/<name>` → queue */
  private readonly queues = new Map<string, { name: string; queue: Queue }>();
  private readonly workers: Worker[] = [];
  private closing: Promise<void> | undefined;
  /** Connection errors by message → when last logged: an outage or failover repeats each one per queue every few ms. */
  private readonly logged = new Map<string, number>();

  constructor(
    private readonly connection: ConnectionOptions,
    /** BullMQ prefix of partition i (a distinct hash tag per partition). */
    private readonly prefixOf: (partition: number) => string,
    private readonly partitions: number,
    private readonly log: Logger,
  ) {}

  private queue(name: string, partition: number): Queue {
    const id = `${partition}/${name}`;
    let q = this.queues.get(id)?.queue;
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.prefixOf(partition), defaultJobOptions: DEFAULT_JOB_OPTIONS });
      q.on('error', (err) => this.warnOnce(err, { queue: name, partition }, 'queue error'));
      this.queues.set(id, { name, queue: q });
    }
    return q;
  }

  private partition(target: JobTarget | undefined): number {
    return target?.room === undefined ? 0 : partitionOf(target.room, this.partitions);
  }

  /**
   * Adds a job with its own options (attempts, backoff, retention); an existing id makes it a no-op.
   * Without a `target` the job goes to partition 0 (cluster-wide kinds: webhook deliveries).
   */
  async add(queue: string, jobId: string, data: object, opts: JobsOptions, target?: JobTarget): Promise<void> {
    await this.queue(queue, this.partition(target)).add(queue, data, { ...opts, jobId });
  }

  /** Adds a delayed job; an existing job with the same id makes this a no-op (BullMQ semantics). */
  async schedule(queue: string, jobId: string, data: object, delayMs: number, target?: JobTarget): Promise<void> {
    await this.queue(queue, this.partition(target)).add(queue, data, { jobId, delay: delayMs });
  }

  /**
   * A cluster-wide periodic job: one scheduler entry in Redis, whichever worker is alive runs it,
   * instead of a setInterval in every worker (which would run N times and die with its worker).
   */
  async every(queue: string, schedulerId: string, everyMs: number, data: object): Promise<void> {
    await this.queue(queue, 0).upsertJobScheduler(schedulerId, { every: everyMs }, { name: queue, data });
  }

  /** Starts processing a job kind in this worker process: every partition of a per-room kind. */
  work<S extends z.ZodType>(kind: JobKind<S>): void {
    for (let p = 0; p < (kind.perRoom ? this.partitions : 1); p++) this.workPartition(kind, p);
  }

  private workPartition<S extends z.ZodType>(kind: JobKind<S>, partition: number): void {
    this.queue(kind.queue, partition);
    const worker = new Worker(
      kind.queue,
      async (job) => {
        const parsed = kind.schema.safeParse(job.data);
        if (!parsed.success) {
          // A payload from an incompatible version: retrying cannot help, dropping is safe
          // because every job is a convenience on top of state that lives in Redis.
          this.log.error({ queue: kind.queue, jobId: job.id, issues: parsed.error.issues }, 'dropping job with invalid payload');
          metrics.jobsProcessed.inc({ queue: kind.queue, result: 'invalid' });
          return 'invalid';
        }
        const result = await kind.process(parsed.data);
        metrics.jobsProcessed.inc({ queue: kind.queue, result });
        if (result === 'stale') metrics.staleJobs.inc({ queue: kind.queue });
        return result;
      },
      {
        connection: this.connection,
        prefix: this.prefixOf(partition),
        concurrency: kind.concurrency,
        // BullMQ wakes one idle worker per delayed job; if that worker dies, the others only look
        // again after drainDelay (default 5 s). 1 s bounds how late an eviction or flush can be
        // when a worker is killed, for one cheap blocking poll per second per queue.
        drainDelay: 1,
        ...kind.worker,
      },
    );
    worker.on('failed', (job, err) => {
      metrics.jobsProcessed.inc({ queue: kind.queue, result: 'failed' });
      this.log.warn({ queue: kind.queue, jobId: job?.id, attempts: job?.attemptsMade, err: err.message }, 'job failed');
      if (job && kind.onFinalFailure && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        const parsed = kind.schema.safeParse(job.data);
        if (parsed.success) kind.onFinalFailure(parsed.data, err).catch((e: unknown) => this.log.error({ queue: kind.queue, err: e }, 'final-failure handler failed'));
      }
    });
    worker.on('error', (err) => this.warnOnce(err, { queue: kind.queue, partition }, 'worker error'));
    this.workers.push(worker);
  }

  private warnOnce(err: Error, context: object, msg: string): void {
    const now = Date.now();
    if (now - (this.logged.get(err.message) ?? 0) < 10_000) return;
    this.logged.set(err.message, now);
    if (this.logged.size > 100) this.logged.clear();
    this.log.warn({ ...context, err: err.message }, `${msg} (repeats of this error within 10 s are not logged)`);
  }

  /** Samples job counts into tether_queue_jobs (called at scrape time), partitions summed. */
  async sampleDepths(): Promise<void> {
    const totals = new Map<string, Record<string, number>>();
    await Promise.all(
      [...this.queues.values()].map(async ({ name, queue }) => {
        const counts = await queue.getJobCounts('delayed', 'waiting', 'active', 'failed');
        const sum = totals.get(name) ?? {};
        for (const [state, n] of Object.entries(counts)) sum[state] = (sum[state] ?? 0) + n;
        totals.set(name, sum);
      }),
    );
    for (const [name, counts] of totals) for (const [state, n] of Object.entries(counts)) metrics.queueDepth.set({ queue: name, state }, n);
  }

  /** Stops taking new jobs, lets running ones finish, closes connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled(this.workers.map((w) => w.close()));
      await Promise.allSettled([...this.queues.values()].map(({ queue }) => queue.close()));
    })();
    return this.closing;
  }
}

/** BullMQ job ids may not contain ':'; ours are built only from ids that cannot contain it. */
export function jobId(...parts: (string | number)[]): string {
  return parts.join('-');
}

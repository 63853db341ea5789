import { Queue, Worker, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';

/**
 * One BullMQ queue per job kind, each with one idempotent processor. Rules every job follows
 * (../shared/STYLE.md, rule 5): a deterministic job id (no ':' — BullMQ reserves it), a versioned
 * payload validated when dequeued, and a processor that re-reads the world (the epoch) and returns
 * 'stale' when it moved on, because an active BullMQ job cannot be removed.
 */
export interface JobKind<S extends z.ZodType> {
  queue: string;
  schema: S;
  concurrency: number;
  process(data: z.output<S>): Promise<'done' | 'stale'>;
  /** Worker options beyond the defaults (a shorter lock for jobs that must be retried soon after a death). */
  worker?: { lockDuration?: number; stalledInterval?: number };
  /** Called once when a job failed its last attempt (dead letter). */
  onFinalFailure?(data: z.output<S>, err: Error): Promise<void>;
}

// Kept jobs only cost memory; failed ones are kept a while for inspection.
const DEFAULT_JOB_OPTIONS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: { age: 3600, count: 1000 },
  attempts: 5,
  backoff: { type: 'exponential', delay: 200 },
};

export class Jobs {
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.prefix, defaultJobOptions: DEFAULT_JOB_OPTIONS });
      q.on('error', (err) => this.log.warn({ queue: name, err: err.message }, 'queue error'));
      this.queues.set(name, q);
    }
    return q;
  }

  /** Adds a job with its own options (attempts, backoff, retention); an existing id makes it a no-op. */
  async add(queue: string, jobId: string, data: object, opts: JobsOptions): Promise<void> {
    await this.queue(queue).add(queue, data, { ...opts, jobId });
  }

  /** Adds a delayed job; an existing job with the same id makes this a no-op (BullMQ semantics). */
  async schedule(queue: string, jobId: string, data: object, delayMs: number): Promise<void> {
    await this.queue(queue).add(queue, data, { jobId, delay: delayMs });
  }

  /**
   * A cluster-wide periodic job: one scheduler entry in Redis, whichever worker is alive runs it,
   * instead of a setInterval in every worker (which would run N times and die with its worker).
   */
  async every(queue: string, schedulerId: string, everyMs: number, data: object): Promise<void> {
    await this.queue(queue).upsertJobScheduler(schedulerId, { every: everyMs }, { name: queue, data });
  }

  /** Best effort: a job that is already running cannot be removed, which is why processors check epochs. */
  async cancel(queue: string, jobId: string): Promise<void> {
    try {
      await this.queue(queue).remove(jobId);
    } catch (err) {
      this.log.debug({ queue, jobId, err: (err as Error).message }, 'job not removed');
    }
  }

  /** Starts processing a job kind in this worker process. */
  work<S extends z.ZodType>(kind: JobKind<S>): void {
    this.queue(kind.queue);
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
        prefix: this.prefix,
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
    worker.on('error', (err) => this.log.warn({ queue: kind.queue, err: err.message }, 'worker error'));
    this.workers.push(worker);
  }

  /** Samples job counts into tether_queue_jobs (called at scrape time). */
  async sampleDepths(): Promise<void> {
    await Promise.all(
      [...this.queues].map(async ([name, q]) => {
        const counts = await q.getJobCounts('delayed', 'waiting', 'active', 'failed');
        for (const [state, n] of Object.entries(counts)) metrics.queueDepth.set({ queue: name, state }, n);
      }),
    );
  }

  /** Stops taking new jobs, lets running ones finish, closes connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled(this.workers.map((w) => w.close()));
      await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    })();
    return this.closing;
  }
}

/** BullMQ job ids may not contain ':'; ours are built only from ids that cannot contain it. */
export function jobId(...parts: (string | number)[]): string {
  return parts.join('-');
}

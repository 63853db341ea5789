import client from 'prom-client';

/**
 * Every Prometheus metric Tether exports, declared in one place. Labels are bounded enums
 * (reason, outcome, source, queue, command kind): never a roomId or clientId — one series per room
 * or client would grow without bound and take Prometheus down with the service (see Centrifuge's
 * metrics.go for the same rule). docs/OPERATIONS.md documents each; a test keeps them in step.
 */
export const registry = new client.Registry();

const secondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const countBuckets = [0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000];

export const metrics = {
  connectedClients: new client.Gauge({
    name: 'tether_connected_clients',
    help: 'Sockets currently connected to this worker',
    registers: [registry],
  }),
  connections: new client.Counter({
    name: 'tether_connections_total',
    help: 'Socket connections accepted (new clientId or reconnect)',
    labelNames: ['kind'] as const, // new | reconnect
    registers: [registry],
  }),
  connectionsRejected: new client.Counter({
    name: 'tether_connections_rejected_total',
    help: 'Handshakes refused by the middleware, by error code',
    labelNames: ['code'] as const,
    registers: [registry],
  }),
  disconnections: new client.Counter({
    name: 'tether_disconnections_total',
    help: 'Socket disconnections by Socket.IO reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  }),
  connectionDuration: new client.Histogram({
    name: 'tether_connection_duration_seconds',
    help: 'How long sockets stayed connected',
    buckets: [1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
    registers: [registry],
  }),
  roomsJoined: new client.Counter({
    name: 'tether_rooms_joined_total',
    help: 'Successful room joins (first join, not rejoins)',
    registers: [registry],
  }),
  roomsCreated: new client.Counter({
    name: 'tether_rooms_created_total',
    help: 'Rooms created over HTTP, socket, or by the demo page',
    labelNames: ['via'] as const, // http | socket | demo
    registers: [registry],
  }),
  requestErrors: new client.Counter({
    name: 'tether_request_errors_total',
    help: 'Socket requests answered with an error, by error code',
    labelNames: ['code'] as const,
    registers: [registry],
  }),
  reconnections: new client.Counter({
    name: 'tether_reconnections_total',
    help: 'Room rejoins after a reconnect, by outcome',
    labelNames: ['outcome'] as const, // recovered | snapshot | not_in_room
    registers: [registry],
  }),
  recoveries: new client.Counter({
    name: 'tether_recoveries_total',
    help: 'Catch-up attempts by outcome: replayed from the log or fell back to a snapshot',
    labelNames: ['outcome'] as const, // recovered | snapshot
    registers: [registry],
  }),
  catchupEvents: new client.Histogram({
    name: 'tether_catchup_events',
    help: 'Events replayed per recovery or catch-up request',
    buckets: countBuckets,
    registers: [registry],
  }),
  graceEvictions: new client.Counter({
    name: 'tether_grace_evictions_total',
    help: 'Participants removed because their grace period ran out',
    registers: [registry],
  }),
  staleJobs: new client.Counter({
    name: 'tether_stale_jobs_total',
    help: 'Delayed jobs that found the world had moved on (epoch changed) and did nothing',
    labelNames: ['queue'] as const,
    registers: [registry],
  }),
  takeovers: new client.Counter({
    name: 'tether_takeovers_total',
    help: 'Connections that replaced a live socket of the same clientId',
    registers: [registry],
  }),
  joinFillsSkipped: new client.Counter({
    name: 'tether_join_fills_skipped_total',
    help: 'First joins whose window between admission and the stream needed no log read: this worker heard the room all along and nothing past the state was broadcast',
    registers: [registry],
  }),
  reconnectFlushBatchSize: new client.Histogram({
    name: 'tether_reconnect_flush_batch_size',
    help: 'Presence changes announced per batched room:presence flush',
    buckets: countBuckets,
    registers: [registry],
  }),
  eventsPublished: new client.Counter({
    name: 'tether_events_published_total',
    help: 'Sequenced room events appended to the log, by source',
    labelNames: ['source'] as const, // client | http | system
    registers: [registry],
  }),
  eventsDeduplicated: new client.Counter({
    name: 'tether_events_deduplicated_total',
    help: 'Publishes recognised as resends (same clientMsgId / idempotencyKey)',
    registers: [registry],
  }),
  eventLogTrimmed: new client.Counter({
    name: 'tether_event_log_trimmed_total',
    help: 'Events dropped from catch-up logs by count or age retention',
    registers: [registry],
  }),
  signals: new client.Counter({
    name: 'tether_signals_total',
    help: 'Ephemeral room signals relayed',
    registers: [registry],
  }),
  rateLimited: new client.Counter({
    name: 'tether_rate_limited_total',
    help: 'Requests refused by a rate limit',
    labelNames: ['kind'] as const, // publish | signal | message | sync
    registers: [registry],
  }),
  fanoutLatency: new client.Histogram({
    name: 'tether_event_fanout_seconds',
    help: 'From receiving a publish to handing the broadcast to the adapter (append + emit)',
    buckets: secondsBuckets,
    registers: [registry],
  }),
  redisLatency: new client.Histogram({
    name: 'tether_redis_command_seconds',
    help: 'Latency of Tether Redis scripts and commands, by operation kind',
    labelNames: ['op'] as const,
    buckets: secondsBuckets,
    registers: [registry],
  }),
  redisUp: new client.Gauge({
    name: 'tether_redis_up',
    help: '1 when the last Redis health probe of this worker succeeded',
    registers: [registry],
  }),
  // Every worker samples the same shared queues: aggregate across instances with max, not sum.
  queueDepth: new client.Gauge({
    name: 'tether_queue_jobs',
    help: 'BullMQ jobs by queue and state (sampled at scrape time; the same value on every worker)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
  }),
  jobsProcessed: new client.Counter({
    name: 'tether_jobs_processed_total',
    help: 'BullMQ jobs processed by this worker, by queue and result',
    labelNames: ['queue', 'result'] as const, // result: done | stale | invalid | failed
    registers: [registry],
  }),
  inboxQueued: new client.Counter({
    name: 'tether_inbox_queued_total',
    help: 'Direct messages stored in a user inbox',
    registers: [registry],
  }),
  inboxDelivered: new client.Counter({
    name: 'tether_inbox_delivered_total',
    help: 'Inbox messages handed to a socket (live or on reconnect)',
    registers: [registry],
  }),
  playbackSyncs: new client.Counter({
    name: 'tether_playback_syncs_total',
    help: 'Cluster-wide drift-correction playback:sync broadcasts',
    registers: [registry],
  }),
  playbackCommands: new client.Counter({
    name: 'tether_playback_commands_total',
    help: 'Playback control commands applied, by action',
    labelNames: ['action'] as const, // start | pause | seek | stop | grant
    registers: [registry],
  }),
  draining: new client.Gauge({
    name: 'tether_draining',
    help: '1 while this worker is draining for shutdown',
    registers: [registry],
  }),
  drainDisconnects: new client.Counter({
    name: 'tether_drain_disconnects_total',
    help: 'Sockets disconnected by a graceful drain',
    registers: [registry],
  }),
  fencings: new client.Counter({
    name: 'tether_fencings_total',
    help: 'Times this worker found its heartbeat expired (Redis paused or unreachable) and closed its sockets so their clients rejoin',
    registers: [registry],
  }),
  reapedSockets: new client.Counter({
    name: 'tether_reaped_sockets_total',
    help: 'Sockets of dead worker instances disconnected by the reaper',
    registers: [registry],
  }),
  adapterPublishErrors: new client.Counter({
    name: 'tether_adapter_publish_errors_total',
    help: 'Cross-worker broadcasts the Redis adapter could not publish (Redis down); room heads let clients fill the gap',
    registers: [registry],
  }),
  lateSubscriptions: new client.Counter({
    name: 'tether_late_subscriptions_total',
    help: 'Joins whose room channel SSUBSCRIBE (Redis Cluster) confirmed only after the join stopped waiting for it; the join fills from the log again at the confirmation',
    registers: [registry],
  }),
  lateFillErrors: new client.Counter({
    name: 'tether_late_fill_errors_total',
    help: 'Second fills of late-subscribed joins (tether_late_subscriptions_total) that failed; the client fills the gap from the next event or room:head',
    registers: [registry],
  }),
  replicationWaitTimeouts: new client.Counter({
    name: 'tether_redis_replication_wait_timeouts_total',
    help: 'Writes acknowledged although fewer than REDIS_WAIT_REPLICAS replicas confirmed them within REDIS_WAIT_TIMEOUT_MS (a failover could lose them)',
    registers: [registry],
  }),
  roomHeads: new client.Counter({
    name: 'tether_room_heads_total',
    help: 'room:head messages emitted by this worker to its local sockets',
    registers: [registry],
  }),
  webhooksQueued: new client.Counter({
    name: 'tether_webhooks_queued_total',
    help: 'Lifecycle webhooks relayed from an outbox to the delivery queue, by type',
    labelNames: ['type'] as const,
    registers: [registry],
  }),
  webhookDeliveries: new client.Counter({
    name: 'tether_webhook_deliveries_total',
    help: 'Webhook delivery attempts by result: delivered | failed | timeout (retried) | dead (out of attempts)',
    labelNames: ['result'] as const,
    registers: [registry],
  }),
  webhookDuration: new client.Histogram({
    name: 'tether_webhook_delivery_seconds',
    help: 'Duration of webhook delivery attempts, by HTTP status class',
    labelNames: ['status'] as const,
    buckets: secondsBuckets,
    registers: [registry],
  }),
  httpRequests: new client.Counter({
    name: 'tether_http_requests_total',
    help: 'HTTP API requests by route and status class',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  }),
};

let defaultsCollected = false;
/** prom-client's process metrics (CPU, RSS, heap, event-loop lag). Once per process. */
export function collectDefaultMetrics(): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  // The lag histogram samples the loop with a timer of this period: every 10 ms (prom-client's
  // default) cost an idle worker ~5 ms of CPU per second, a third of all it spent idle; every
  // 100 ms still catches every stall the alerts care about (p99 > 200 ms) and costs a tenth.
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
}

/** Times an async Redis operation into tether_redis_command_seconds. */
export async function timeRedis<T>(op: string, fn: () => Promise<T>): Promise<T> {
  const end = metrics.redisLatency.startTimer({ op });
  try {
    return await fn();
  } finally {
    end();
  }
}

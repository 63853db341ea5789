import { availableParallelism, hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import proxyaddr from 'proxy-addr';
import { z } from 'zod';

/**
 * The only reader of process.env. Every variable is parsed by one schema; all problems are
 * reported together (one line each) and the process refuses to start, instead of running with a
 * silently defaulted value.
 */

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const redisUrl = z
  .string()
  .regex(/^rediss?:\/\/.+/, 'must be a redis:// or rediss:// URL');
/** `host:port,host:port`: seeds of a Redis Cluster, or the Sentinels of a master. */
const hostPorts = z
  .string()
  .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
  .pipe(
    z
      .array(z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, 'host:port entries, comma-separated'))
      .min(1, 'at least one host:port'),
  )
  .transform((list) =>
    list.map((hp) => {
      const i = hp.lastIndexOf(':');
      return { host: hp.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(hp.slice(i + 1)) };
    }),
  )
  .refine((list) => list.every((n) => n.port > 0 && n.port < 65536), 'ports must be 1-65535');

/** Lifecycle webhook types (WEBHOOK_EVENTS chooses among them). */
export const WEBHOOK_EVENT_TYPES = ['room.created', 'room.vacated', 'room.deleted', 'member.joined', 'member.left', 'user.online', 'user.offline'] as const;

const fields = z
  .object({
    PORT: int(0, 65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    LISTEN_BACKLOG: int(1, 1_000_000).default(4096),
    WORKERS: int(1, 256).default(availableParallelism()),
    NODE_ID: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only (max 64)')
      .optional(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    REDIS_MODE: z.enum(['standalone', 'cluster', 'sentinel']).default('standalone'),
    REDIS_URL: redisUrl.optional(),
    REDIS_ADAPTER_URL: redisUrl.optional(),
    REDIS_QUEUE_URL: redisUrl.optional(),
    REDIS_CLUSTER_NODES: hostPorts.optional(),
    REDIS_SENTINELS: hostPorts.optional(),
    REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'letters, digits, _ . - only').default('mymaster'),
    REDIS_USERNAME: z.string().min(1).optional(),
    REDIS_PASSWORD: z.string().min(1).optional(),
    REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
    REDIS_TLS: bool.default(false),
    QUEUE_PARTITIONS: int(1, 256).optional(),
    REDIS_WAIT_REPLICAS: int(0, 16).default(0),
    REDIS_WAIT_TIMEOUT_MS: int(1, 60_000).default(250),
    TEST_SUBSCRIBE_DELAY_MS: int(0, 60_000).default(0),
    KEY_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ - only (max 32)')
      .default('tether'),

    JWT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
    SERVICE_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    ALLOW_GUESTS: bool.default(true),
    DEMO_ROOMS: bool.default(false),
    CORS_ORIGIN: z.string().min(1).default('*'),

    WS_PING_INTERVAL: int(1000, 600_000).default(25_000),
    WS_PING_TIMEOUT: int(1000, 600_000).default(10_000),
    MAX_PAYLOAD_BYTES: int(1024, 16 * 1024 * 1024).default(64 * 1024),
    MAX_EVENT_DATA_BYTES: int(16, 1024 * 1024).default(16 * 1024),

    ROOM_TTL_MS: int(60_000, 30 * 24 * 3600_000).default(24 * 3600_000),
    ROOM_MAX_PARTICIPANTS: int(1, 100_000).default(1000),
    GRACE_PERIOD_MS: int(100, 24 * 3600_000).default(30_000),
    EVICT_WINDOW_MS: int(10, 600_000).default(1_000),
    TAKEOVER_GRACE_MS: int(0, 60_000).default(2_500),
    RECONNECT_FLUSH_MS: int(50, 60_000).default(3_000),
    JOIN_BATCH_THRESHOLD: int(0, 1_000_000).default(20),
    SESSION_TTL_MS: int(60_000, 90 * 24 * 3600_000).default(7 * 24 * 3600_000),
    SESSION_IDLE_TTL_MS: int(1000, 90 * 24 * 3600_000).default(15 * 60_000),

    CATCHUP_MAX_EVENTS: int(10, 1_000_000).default(1000),
    CATCHUP_TTL_MS: int(1000, 7 * 24 * 3600_000).default(10 * 60_000),
    CATCHUP_PAGE_SIZE: int(1, 10_000).default(500),
    DEDUP_TTL_MS: int(1000, 7 * 24 * 3600_000).default(10 * 60_000),
    ROOM_HEAD_INTERVAL_MS: int(0, 3600_000).default(3000),
    TEST_DROP_BROADCAST_TYPE: z.string().min(1).max(64).optional(),
    PUBLISH_RATE_PER_SEC: int(1, 100_000).default(20),
    PUBLISH_BURST: int(1, 100_000).default(40),
    SIGNAL_RATE_PER_SEC: int(1, 100_000).default(30),
    MESSAGE_RATE_PER_SEC: int(1, 100_000).default(5),
    MESSAGE_BURST: int(1, 100_000).default(10),
    ROOM_PUBLISH_RATE_PER_SEC: int(1, 1_000_000).default(200),
    ROOM_PUBLISH_BURST: int(1, 1_000_000).default(400),
    ROOM_SIGNALS_PER_SEC: int(1, 1_000_000).default(300),
    HANDSHAKES_PER_ADDRESS_PER_MIN: int(0, 10_000_000).default(120),
    PASSWORD_ATTEMPTS_PER_CLIENT: int(1, 100_000).default(5),
    PASSWORD_ATTEMPTS_PER_ADDRESS: int(1, 100_000).default(30),
    PASSWORD_ATTEMPTS_PER_ROOM: int(1, 1_000_000).default(100),
    PASSWORD_WINDOW_MS: int(1000, 24 * 3600_000).default(5 * 60_000),
    PASSWORD_LOCKOUT_MS: int(0, 24 * 3600_000).default(5 * 60_000),
    ROOM_CREATES_PER_USER_PER_MIN: int(1, 1_000_000).default(30),
    CATCHUPS_PER_CLIENT_PER_MIN: int(1, 1_000_000).default(600),
    HTTP_REQUESTS_PER_MIN: int(1, 100_000_000).default(6000),
    WEBHOOK_URLS: z
      .string()
      .refine((v) => v.split(',').every((u) => /^https?:\/\/[^\s,]+$/.test(u.trim())), 'comma-separated http(s) URLs')
      .optional(),
    WEBHOOK_SECRET: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/, 'a Standard Webhooks secret: whsec_ + base64 of at least 24 random bytes (e.g. echo whsec_$(openssl rand -base64 32))')
      .optional(),
    WEBHOOK_EVENTS: z
      .string()
      .refine((v) => v.split(',').every((t) => (WEBHOOK_EVENT_TYPES as readonly string[]).includes(t.trim())), `comma-separated, from: ${WEBHOOK_EVENT_TYPES.join(', ')}`)
      .optional(),
    WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(5000),
    WEBHOOK_MAX_ATTEMPTS: int(1, 100).default(10),
    WEBHOOK_RETRY_BASE_MS: int(10, 3600_000).default(1000),
    WEBHOOK_SWEEP_MS: int(500, 3600_000).default(5000),
    USER_OFFLINE_GRACE_MS: int(0, 24 * 3600_000).optional(),
    TRUST_PROXY: z
      .string()
      .regex(/^[0-9A-Za-z.:/,\s]+$/, 'comma-separated addresses, CIDRs or loopback/linklocal/uniquelocal')
      .refine((v) => {
        try {
          proxyaddr.compile(v.split(',').map((s) => s.trim()).filter(Boolean));
          return true;
        } catch {
          return false;
        }
      }, 'not a list proxy-addr understands (addresses, CIDRs, loopback, linklocal, uniquelocal)')
      .optional(),

    INBOX_TTL_MS: int(1000, 30 * 24 * 3600_000).default(24 * 3600_000),
    INBOX_MAX_MESSAGES: int(1, 100_000).default(500),

    PLAYBACK_SYNC_INTERVAL_MS: int(100, 3600_000).default(10_000),
    DEFAULT_RTT_MS: int(0, 10_000).default(50),

    DRAIN_BATCH_SIZE: int(1, 100_000).default(100),
    DRAIN_INTERVAL_MS: int(0, 60_000).default(200),
    DRAIN_RECONNECT_JITTER_MS: int(0, 120_000).default(2_000),
    SHUTDOWN_TIMEOUT_MS: int(1000, 600_000).default(25_000),
  })
  .superRefine((e, ctx) => {
    // Which Redis variables belong to which REDIS_MODE: a variable of another mode is a mistake
    // (a REDIS_URL left over next to REDIS_MODE=cluster would otherwise be silently ignored).
    const problem = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (e.REDIS_MODE !== 'standalone') {
      for (const v of ['REDIS_URL', 'REDIS_ADAPTER_URL', 'REDIS_QUEUE_URL'] as const) {
        if (e[v] !== undefined) problem(v, `not used with REDIS_MODE=${e.REDIS_MODE} (commands, adapter and queues all follow the mode)`);
      }
    } else {
      for (const v of ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS'] as const) {
        if (e[v] !== undefined && e[v] !== false) problem(v, 'only with REDIS_MODE=cluster or sentinel (standalone: put it in REDIS_URL, e.g. rediss://user:pass@host:6379)');
      }
    }
    if (e.REDIS_MODE === 'cluster' && !e.REDIS_CLUSTER_NODES) problem('REDIS_CLUSTER_NODES', 'required with REDIS_MODE=cluster (host:port seeds, comma-separated)');
    if (e.REDIS_MODE !== 'cluster' && e.REDIS_CLUSTER_NODES) problem('REDIS_CLUSTER_NODES', 'only with REDIS_MODE=cluster');
    if (e.REDIS_MODE === 'sentinel' && !e.REDIS_SENTINELS) problem('REDIS_SENTINELS', 'required with REDIS_MODE=sentinel (host:port of the Sentinels, comma-separated)');
    if (e.REDIS_MODE !== 'sentinel' && e.REDIS_SENTINELS) problem('REDIS_SENTINELS', 'only with REDIS_MODE=sentinel');
    if (e.REDIS_MODE !== 'sentinel' && e.REDIS_SENTINEL_PASSWORD) problem('REDIS_SENTINEL_PASSWORD', 'only with REDIS_MODE=sentinel');
  });

// Cross-field: endpoints without a secret would send unsigned webhooks.
const schema = fields.superRefine((e, ctx) => {
    if (e.WEBHOOK_URLS && !e.WEBHOOK_SECRET) ctx.addIssue({ code: 'custom', path: ['WEBHOOK_SECRET'], message: 'required when WEBHOOK_URLS is set (webhooks are always signed)' });
  });

type Env = z.output<typeof schema>;

export interface Config {
  /**
   * The listening socket's accept queue (capped by the kernel's net.core.somaxconn). Node's default
   * of 511 overflows in a reconnect storm: every connection the kernel drops waits for a SYN
   * retransmit (1 s, then 3 s, 7 s …), which is most of a storm's reconnect time.
   */
  readonly listenBacklog: number;
  readonly port: number;
  readonly host: string;
  readonly workers: number;
  readonly nodeId: string;
  readonly logLevel: Env['LOG_LEVEL'];
  readonly redis: RedisConfig;
  readonly auth: {
    readonly jwtSecret: string | undefined;
    readonly serviceToken: string | undefined;
    readonly allowGuests: boolean;
  };
  /** The demo page's room creation by guests (POST /v1/demo/rooms); the page itself is always served. */
  readonly demo: { readonly rooms: boolean };
  readonly corsOrigin: string | string[];
  readonly ws: { readonly pingInterval: number; readonly pingTimeout: number; readonly maxPayloadBytes: number };
  readonly rooms: { readonly ttlMs: number; readonly maxParticipants: number };
  readonly sessions: {
    readonly gracePeriodMs: number;
    /**
     * Grace-period evictions are batched per room into windows this long: one delayed job per room
     * and window evicts every member whose grace period ended in it, so a member is evicted between
     * GRACE_PERIOD_MS and GRACE_PERIOD_MS + this after it went away.
     */
    readonly evictWindowMs: number;
    readonly takeoverGraceMs: number;
    readonly reconnectFlushMs: number;
    /**
     * First joins into a room that already has at least this many members are announced in the
     * batched room:presence (like returns), not one room:participant:joined each. 0: never.
     */
    readonly joinBatchThreshold: number;
    readonly ttlMs: number;
    /** TTL of a disconnected session that never joined a code room. */
    readonly idleTtlMs: number;
  };
  readonly events: {
    readonly maxDataBytes: number;
    readonly catchupMaxEvents: number;
    readonly catchupTtlMs: number;
    readonly catchupPageSize: number;
    readonly dedupTtlMs: number;
    /** 0: no room heads. */
    readonly headIntervalMs: number;
    /** Tests only: room:event broadcasts of this type are appended but never emitted (a lost broadcast on purpose). */
    readonly testDropBroadcastType: string | undefined;
    readonly publishRatePerSec: number;
    readonly publishBurst: number;
    readonly signalRatePerSec: number;
  };
  readonly inbox: {
    readonly ttlMs: number;
    readonly maxMessages: number;
    readonly messageRatePerSec: number;
    readonly messageBurst: number;
  };
  readonly playback: { readonly syncIntervalMs: number; readonly defaultRttMs: number };
  readonly webhooks: {
    readonly urls: string[];
    /** Standard Webhooks secret (whsec_…); present whenever urls are. */
    readonly secret: string | undefined;
    readonly events: string[];
    readonly timeoutMs: number;
    readonly maxAttempts: number;
    readonly retryBaseMs: number;
    readonly sweepMs: number;
    /** user.offline only once the user's last device stayed away this long (default GRACE_PERIOD_MS). */
    readonly userOfflineGraceMs: number;
  };
  readonly limits: {
    readonly roomPublishRatePerSec: number;
    readonly roomPublishBurst: number;
    readonly roomSignalsPerSec: number;
    /** 0: off. */
    readonly handshakesPerAddressPerMin: number;
    readonly passwordAttemptsPerClient: number;
    readonly passwordAttemptsPerAddress: number;
    readonly passwordAttemptsPerRoom: number;
    readonly passwordWindowMs: number;
    readonly passwordLockoutMs: number;
    readonly roomCreatesPerUserPerMin: number;
    readonly catchupsPerClientPerMin: number;
    readonly httpRequestsPerMin: number;
    /** Proxies whose X-Forwarded-For is believed (proxy-addr syntax); empty: the socket's own address. */
    readonly trustProxy: string[];
  };
  readonly drain: {
    readonly batchSize: number;
    readonly intervalMs: number;
    readonly reconnectJitterMs: number;
    readonly shutdownTimeoutMs: number;
  };
}

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/**
 * Where Redis is. `standalone`: one URL (and optionally separate ones for the adapter and the
 * queues); `cluster`: seeds of a Redis Cluster; `sentinel`: the Sentinels and the master's name.
 * Commands, the Socket.IO adapter and BullMQ all follow the same mode.
 */
export interface RedisConfig {
  readonly mode: 'standalone' | 'cluster' | 'sentinel';
  /** Standalone only; undefined in the `npm start` primary before it starts a local redis-server. */
  readonly url: string | undefined;
  readonly adapterUrl: string | undefined;
  readonly queueUrl: string | undefined;
  readonly clusterNodes: readonly RedisNode[];
  readonly sentinels: readonly RedisNode[];
  readonly sentinelName: string;
  /** Cluster and sentinel: credentials and TLS of the data nodes (standalone: in the URL). */
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly sentinelPassword: string | undefined;
  readonly tls: boolean;
  readonly keyPrefix: string;
  /** Hash-tagged BullMQ partitions the per-room queues are spread over (1 = the one `{<prefix>-bull}` tag). */
  readonly queuePartitions: number;
  /**
   * Replicas that must have a state change (WAIT) before it is acknowledged to a client; 0: none
   * (replication stays asynchronous, a failover can lose the last acknowledged writes).
   */
  readonly waitReplicas: number;
  readonly waitTimeoutMs: number;
  /** Tests only: each shard-channel SSUBSCRIBE is sent this much later (a subscription slower than the join's wait for it). */
  readonly testSubscribeDelayMs: number;
}

/** BullMQ partitions by default: one tag is one slot is one master, so a cluster gets several. */
export const DEFAULT_CLUSTER_QUEUE_PARTITIONS = 8;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses the environment; throws ConfigError listing every bad variable at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset": compose files and shells often export VAR= for optional values.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message} (got ${JSON.stringify(present[String(i.path[0])] ?? null)})`),
    );
  }
  const e = parsed.data;
  const origins = e.CORS_ORIGIN.split(',').map((s) => s.trim()).filter(Boolean);
  return deepFreeze<Config>({
    port: e.PORT,
    host: e.HOST,
    listenBacklog: e.LISTEN_BACKLOG,
    workers: e.WORKERS,
    nodeId: e.NODE_ID ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`,
    logLevel: e.LOG_LEVEL,
    redis: {
      mode: e.REDIS_MODE,
      url: e.REDIS_URL,
      adapterUrl: e.REDIS_ADAPTER_URL ?? e.REDIS_URL,
      queueUrl: e.REDIS_QUEUE_URL ?? e.REDIS_URL,
      clusterNodes: e.REDIS_CLUSTER_NODES ?? [],
      sentinels: e.REDIS_SENTINELS ?? [],
      sentinelName: e.REDIS_SENTINEL_NAME,
      username: e.REDIS_USERNAME,
      password: e.REDIS_PASSWORD,
      sentinelPassword: e.REDIS_SENTINEL_PASSWORD,
      tls: e.REDIS_TLS,
      keyPrefix: e.KEY_PREFIX,
      queuePartitions: e.QUEUE_PARTITIONS ?? (e.REDIS_MODE === 'cluster' ? DEFAULT_CLUSTER_QUEUE_PARTITIONS : 1),
      waitReplicas: e.REDIS_WAIT_REPLICAS,
      waitTimeoutMs: e.REDIS_WAIT_TIMEOUT_MS,
      testSubscribeDelayMs: e.TEST_SUBSCRIBE_DELAY_MS,
    },
    auth: { jwtSecret: e.JWT_SECRET, serviceToken: e.SERVICE_TOKEN, allowGuests: e.ALLOW_GUESTS },
    demo: { rooms: e.DEMO_ROOMS },
    corsOrigin: origins.length === 1 ? origins[0]! : origins,
    ws: { pingInterval: e.WS_PING_INTERVAL, pingTimeout: e.WS_PING_TIMEOUT, maxPayloadBytes: e.MAX_PAYLOAD_BYTES },
    rooms: { ttlMs: e.ROOM_TTL_MS, maxParticipants: e.ROOM_MAX_PARTICIPANTS },
    sessions: {
      gracePeriodMs: e.GRACE_PERIOD_MS,
      evictWindowMs: e.EVICT_WINDOW_MS,
      takeoverGraceMs: e.TAKEOVER_GRACE_MS,
      reconnectFlushMs: e.RECONNECT_FLUSH_MS,
      joinBatchThreshold: e.JOIN_BATCH_THRESHOLD,
      ttlMs: e.SESSION_TTL_MS,
      idleTtlMs: e.SESSION_IDLE_TTL_MS,
    },
    events: {
      maxDataBytes: e.MAX_EVENT_DATA_BYTES,
      catchupMaxEvents: e.CATCHUP_MAX_EVENTS,
      catchupTtlMs: e.CATCHUP_TTL_MS,
      catchupPageSize: e.CATCHUP_PAGE_SIZE,
      dedupTtlMs: e.DEDUP_TTL_MS,
      headIntervalMs: e.ROOM_HEAD_INTERVAL_MS,
      testDropBroadcastType: e.TEST_DROP_BROADCAST_TYPE,
      publishRatePerSec: e.PUBLISH_RATE_PER_SEC,
      publishBurst: e.PUBLISH_BURST,
      signalRatePerSec: e.SIGNAL_RATE_PER_SEC,
    },
    inbox: { ttlMs: e.INBOX_TTL_MS, maxMessages: e.INBOX_MAX_MESSAGES, messageRatePerSec: e.MESSAGE_RATE_PER_SEC, messageBurst: e.MESSAGE_BURST },
    playback: { syncIntervalMs: e.PLAYBACK_SYNC_INTERVAL_MS, defaultRttMs: e.DEFAULT_RTT_MS },
    webhooks: {
      urls: (e.WEBHOOK_URLS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
      secret: e.WEBHOOK_SECRET,
      events: e.WEBHOOK_EVENTS ? e.WEBHOOK_EVENTS.split(',').map((s) => s.trim()) : [...WEBHOOK_EVENT_TYPES],
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      sweepMs: e.WEBHOOK_SWEEP_MS,
      userOfflineGraceMs: e.USER_OFFLINE_GRACE_MS ?? e.GRACE_PERIOD_MS,
    },
    limits: {
      roomPublishRatePerSec: e.ROOM_PUBLISH_RATE_PER_SEC,
      roomPublishBurst: e.ROOM_PUBLISH_BURST,
      roomSignalsPerSec: e.ROOM_SIGNALS_PER_SEC,
      handshakesPerAddressPerMin: e.HANDSHAKES_PER_ADDRESS_PER_MIN,
      passwordAttemptsPerClient: e.PASSWORD_ATTEMPTS_PER_CLIENT,
      passwordAttemptsPerAddress: e.PASSWORD_ATTEMPTS_PER_ADDRESS,
      passwordAttemptsPerRoom: e.PASSWORD_ATTEMPTS_PER_ROOM,
      passwordWindowMs: e.PASSWORD_WINDOW_MS,
      passwordLockoutMs: e.PASSWORD_LOCKOUT_MS,
      roomCreatesPerUserPerMin: e.ROOM_CREATES_PER_USER_PER_MIN,
      catchupsPerClientPerMin: e.CATCHUPS_PER_CLIENT_PER_MIN,
      httpRequestsPerMin: e.HTTP_REQUESTS_PER_MIN,
      trustProxy: (e.TRUST_PROXY ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    },
    drain: {
      batchSize: e.DRAIN_BATCH_SIZE,
      intervalMs: e.DRAIN_INTERVAL_MS,
      reconnectJitterMs: e.DRAIN_RECONNECT_JITTER_MS,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    },
  });
}

/**
 * The webhook filter the Lua steps take: `,type,type,` of the wanted types, or '' when webhooks
 * are off (no endpoint): then no step writes an outbox entry at all.
 */
export function webhookFilter(config: Config): string {
  return config.webhooks.urls.length > 0 && config.webhooks.secret ? `,${config.webhooks.events.join(',')},` : '';
}

/**
 * Workers need to know where Redis is; only the `npm start` primary may start without (it starts a
 * local redis-server for standalone mode).
 */
export function requireRedis(config: Config): RedisConfig {
  if (config.redis.mode === 'standalone' && !config.redis.url) {
    throw new ConfigError(['REDIS_URL: required (e.g. redis://127.0.0.1:6379), or REDIS_MODE=cluster / sentinel with their variables']);
  }
  return config.redis;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Names and defaults, for the README's configuration table test. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(fields.shape);

import { createClient } from 'redis';
import type { ConnectionOptions } from 'bullmq';
import type { Logger } from '../observability/logger.js';

export type RedisCommands = ReturnType<typeof createClient>;

/**
 * Redis connections of one worker. Commands and Lua go through `commands`; the Socket.IO adapter
 * needs its own publisher and a subscriber (a subscribed connection can run nothing else).
 * BullMQ brings its own connections (ioredis, which it is built and tested on).
 */
export interface RedisConnections {
  commands: RedisCommands;
  adapterPub: RedisCommands;
  adapterSub: RedisCommands;
  queue: ConnectionOptions;
  close(): Promise<void>;
}

export async function connectRedis(
  urls: { commands: string; adapter: string; queue: string },
  log: Logger,
): Promise<RedisConnections> {
  const make = (url: string, role: string): RedisCommands => {
    const client = createClient({
      url,
      socket: {
        // Reconnect forever with a capped backoff: a Redis restart must not kill workers.
        reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 2000),
        connectTimeout: 5000,
      },
    });
    let lastError = '';
    client.on('error', (err: Error) => {
      // node-redis emits an error per failed reconnect attempt; log each distinct one once.
      if (err.message !== lastError) log.warn({ role, err: err.message }, 'redis connection error');
      lastError = err.message;
    });
    client.on('ready', () => {
      if (lastError) log.info({ role }, 'redis connection restored');
      lastError = '';
    });
    return client;
  };
  const commands = make(urls.commands, 'commands');
  const adapterPub = make(urls.adapter, 'adapter-pub');
  const adapterSub = make(urls.adapter, 'adapter-sub');
  await Promise.all([commands.connect(), adapterPub.connect(), adapterSub.connect()]);

  const q = new URL(urls.queue);
  const queue: ConnectionOptions = {
    host: q.hostname,
    port: Number(q.port || 6379),
    username: q.username ? decodeURIComponent(q.username) : undefined,
    password: q.password ? decodeURIComponent(q.password) : undefined,
    db: q.pathname.length > 1 ? Number(q.pathname.slice(1)) : 0,
    tls: q.protocol === 'rediss:' ? {} : undefined,
    // BullMQ workers use blocking commands and must retry forever.
    maxRetriesPerRequest: null,
  };

  let closed: Promise<void> | undefined;
  return {
    commands,
    adapterPub,
    adapterSub,
    queue,
    close() {
      closed ??= Promise.allSettled([commands, adapterPub, adapterSub].map((c) => (c.isOpen ? c.quit() : undefined))).then(() => undefined);
      return closed;
    },
  };
}

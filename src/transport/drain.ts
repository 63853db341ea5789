import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { TetherNamespace } from './types.js';

/**
 * Graceful drain: readiness turns false first (the balancer stops sending new clients), every
 * client is told `server:shutdown` with its own jittered reconnect delay, then sockets are closed
 * in batches so the others workers receive a trickle of reconnects, not a wave. The transport is
 * closed rather than the socket disconnected: a plain socket.io-client only reconnects on its own
 * after a transport close, never after a server-side `disconnect`.
 */
export class Drain {
  private draining = false;

  constructor(
    private readonly config: Config,
    private readonly nsp: TetherNamespace,
    private readonly log: Logger,
  ) {}

  get active(): boolean {
    return this.draining;
  }

  async run(deadline: number): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    metrics.draining.set(1);
    const { batchSize, intervalMs, reconnectJitterMs } = this.config.drain;
    const sockets = [...this.nsp.sockets.values()];
    this.log.info({ sockets: sockets.length }, 'draining');
    for (const socket of sockets) socket.emit('server:shutdown', { reconnectAfterMs: randomInt(reconnectJitterMs + 1) });
    for (let i = 0; i < sockets.length; i += batchSize) {
      if (Date.now() > deadline) break;
      for (const socket of sockets.slice(i, i + batchSize)) {
        if (socket.connected) {
          socket.conn.close();
          metrics.drainDisconnects.inc();
        }
      }
      if (i + batchSize < sockets.length) await sleep(intervalMs);
    }
    // Whatever connected meanwhile or was left by the deadline goes now.
    for (const socket of this.nsp.sockets.values()) socket.conn.close();
  }
}

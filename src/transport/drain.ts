import { randomInt } from 'node:crypto';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { TetherError } from '@tether/protocol';
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

/** A new Engine.IO session (no `sid` yet), as opposed to a request of an existing one. */
function isNewHandshake(url: string | undefined): boolean {
  return Boolean(url?.startsWith('/socket.io/') && !/[?&]sid=/.test(url));
}

/**
 * While draining, new Socket.IO handshakes get HTTP 503 before Socket.IO sees them. Behind nginx
 * (`proxy_next_upstream http_503`) the handshake is retried on another worker at once; a direct
 * client treats it as a transport error and retries with backoff. Without this, a sticky balancer
 * would send a drained client straight back to the worker that just closed it. Must be installed
 * after Socket.IO attached to the server (it wraps the listeners present then).
 */
export function gateHandshakes(server: HttpServer, drain: Drain): void {
  const body = JSON.stringify({ error: new TetherError('SERVER_DRAINING').toBody() });
  const requestListeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (drain.active && isNewHandshake(req.url)) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1', connection: 'close' }).end(body);
      return;
    }
    for (const listener of requestListeners) listener.call(server, req, res);
  });
  const upgradeListeners = server.listeners('upgrade') as ((req: IncomingMessage, socket: Duplex, head: Buffer) => void)[];
  server.removeAllListeners('upgrade');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (drain.active && isNewHandshake(req.url)) {
      socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    for (const listener of upgradeListeners) listener.call(server, req, socket, head);
  });
}

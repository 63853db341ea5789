import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a worker, to cut the network under a client the way real
 * networks fail: `freeze()` stops forwarding bytes in both directions without closing anything
 * (a dead Wi-Fi: only ping timeouts notice), `cut()` destroys the connections (a reset).
 */
export interface Proxy {
  url: string;
  port: number;
  freeze(): void;
  thaw(): void;
  /** Freezes the connections open now, forever (until cut); new connections pass: a client that moved to another network while the server still holds its old connection. */
  freezeExisting(): void;
  /** Unreachable: every connection reset, new ones refused, until up(). */
  down(): void;
  up(): void;
  cut(): void;
  close(): Promise<void>;
}

/** `delayMs`: every chunk waits this long in each direction (a slow link; order is kept). */
export async function startProxy(targetPort: number, opts: { delayMs?: number } = {}): Promise<Proxy> {
  const delayMs = opts.delayMs ?? 0;
  const pairs = new Set<[Socket, Socket]>();
  const stuck = new WeakSet<Socket>();
  let frozen = false;
  let unreachable = false;
  const server: Server = createServer((client) => {
    if (unreachable) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (frozen || stuck.has(from)) return;
        // Same delay for every chunk: timers fire in insertion order, so bytes stay in order.
        if (delayMs > 0) setTimeout(() => !to.destroyed && to.write(chunk), delayMs);
        else to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    freeze: () => (frozen = true),
    thaw: () => (frozen = false),
    down() {
      unreachable = true;
      this.cut();
    },
    up: () => (unreachable = false),
    freezeExisting() {
      for (const [c, u] of pairs) {
        stuck.add(c);
        stuck.add(u);
      }
    },
    cut() {
      for (const [c, u] of pairs) {
        c.destroy();
        u.destroy();
      }
      pairs.clear();
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

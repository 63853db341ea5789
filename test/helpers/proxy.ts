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
  cut(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const pairs = new Set<[Socket, Socket]>();
  let frozen = false;
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (!frozen) to.write(chunk);
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

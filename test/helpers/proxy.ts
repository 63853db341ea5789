import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a worker, to cut the network under a client the way real
 * networks fail: `freeze()` stops forwarding bytes in both directions without closing anything
 * (a dead Wi-Fi: only ping timeouts notice), `cut()` destroys the connections (a reset).
 *
 * Options shape the link:
 * - `burstMs`: server→client bytes are held and written in one piece every `burstMs` (a mobile
 *   link delivering in bursts): everything the server sent in that window reaches the client in
 *   one TCP read, so the client parses several frames in one go.
 * - `swallowHandshake(n)`: for the n-th connection (0-based) where it returns true, the client's
 *   first WebSocket frame after the upgrade (Socket.IO's namespace CONNECT, `40/sync,…`) is
 *   dropped: the Engine.IO session opens, the namespace connect is never answered.
 * - `dropServerFrame(text)`: server→client WebSocket text frames for which it returns true are
 *   dropped (a broadcast lost on a connection that stays up).
 * - `delayMs`: every chunk waits this long in each direction (a slow link; order is kept).
 */
export interface Proxy {
  url: string;
  port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Handshakes swallowed so far. */
  readonly swallowed: number;
  /** Server frames dropped so far. */
  readonly dropped: number;
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

export interface ProxyOptions {
  burstMs?: number;
  delayMs?: number;
  swallowHandshake?: (connection: number) => boolean;
  dropServerFrame?: (text: string) => boolean;
}

export async function startProxy(targetPort: number, opts: ProxyOptions = {}): Promise<Proxy> {
  const pairs = new Set<[Socket, Socket]>();
  const timers = new Set<ReturnType<typeof setInterval>>();
  const stuck = new WeakSet<Socket>();
  let frozen = false;
  let unreachable = false;
  const delayMs = opts.delayMs ?? 0;
  // Same delay for every chunk: timers fire in insertion order, so bytes stay in order.
  const send = (to: Socket, chunk: Buffer) => {
    if (delayMs > 0) setTimeout(() => !to.destroyed && to.write(chunk), delayMs);
    else to.write(chunk);
  };
  let connections = 0;
  let swallowed = 0;
  let dropped = 0;
  const server: Server = createServer((client) => {
    if (unreachable) {
      client.destroy();
      return;
    }
    const n = connections++;
    const upstream = tcpConnect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);

    const toUpstream = opts.swallowHandshake?.(n) ? swallowFirstFrame(() => swallowed++) : (chunk: Buffer) => chunk;
    client.on('data', (chunk: Buffer) => {
      if (frozen || stuck.has(client)) return;
      const out = toUpstream(chunk);
      if (out.length) send(upstream, out);
    });

    const fromUpstream = opts.dropServerFrame ? dropFrames(opts.dropServerFrame, () => dropped++) : (chunk: Buffer) => chunk;
    if (opts.burstMs) {
      let held: Buffer[] = [];
      upstream.on('data', (chunk: Buffer) => {
        if (!frozen && !stuck.has(upstream)) held.push(fromUpstream(chunk));
      });
      const timer = setInterval(() => {
        if (held.length === 0 || client.destroyed) return;
        const burst = Buffer.concat(held);
        held = [];
        client.write(burst);
      }, opts.burstMs);
      timers.add(timer);
      client.once('close', () => {
        clearInterval(timer);
        timers.delete(timer);
      });
    } else {
      upstream.on('data', (chunk: Buffer) => {
        if (frozen || stuck.has(upstream)) return;
        const out = fromUpstream(chunk);
        if (out.length) send(client, out);
      });
    }
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
    get connections() {
      return connections;
    },
    get swallowed() {
      return swallowed;
    },
    get dropped() {
      return dropped;
    },
    freeze: () => (frozen = true),
    thaw: () => (frozen = false),
    freezeExisting() {
      for (const [c, u] of pairs) {
        stuck.add(c);
        stuck.add(u);
      }
    },
    down() {
      unreachable = true;
      this.cut();
    },
    up: () => (unreachable = false),
    cut() {
      for (const [c, u] of pairs) {
        c.destroy();
        u.destroy();
      }
      pairs.clear();
    },
    close() {
      this.cut();
      for (const t of timers) clearInterval(t);
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A client→server byte filter that passes the HTTP upgrade request through and drops the first
 * WebSocket frame after it (RFC 6455 framing: client frames are masked), then passes everything.
 */
function swallowFirstFrame(onSwallow: () => void): (chunk: Buffer) => Buffer {
  let pending = Buffer.alloc(0);
  let phase: 'http' | 'frame' | 'pass' = 'http';
  return (chunk) => {
    if (phase === 'pass') return chunk;
    pending = Buffer.concat([pending, chunk]);
    let out = Buffer.alloc(0);
    if (phase === 'http') {
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return out;
      out = pending.subarray(0, end + 4);
      pending = pending.subarray(end + 4);
      phase = 'frame';
    }
    const size = frameSize(pending);
    if (size === null) return out;
    onSwallow();
    const rest = pending.subarray(size);
    pending = Buffer.alloc(0);
    phase = 'pass';
    return Buffer.concat([out, rest]);
  };
}

/** Total bytes of the first frame in `buf`, or null when it is not complete yet. */
function frameSize(buf: Buffer): number | null {
  if (buf.length < 2) return null;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let offset = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const total = offset + (masked ? 4 : 0) + len;
  return buf.length >= total ? total : null;
}

/**
 * A server→client byte filter: passes the HTTP upgrade response, then re-frames the WebSocket
 * stream frame by frame, dropping the unfragmented text frames `drop` selects.
 */
function dropFrames(drop: (text: string) => boolean, onDrop: () => void): (chunk: Buffer) => Buffer {
  let pending = Buffer.alloc(0);
  let upgraded = false;
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    const out: Buffer[] = [];
    if (!upgraded) {
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return Buffer.alloc(0);
      out.push(pending.subarray(0, end + 4));
      pending = pending.subarray(end + 4);
      upgraded = true;
    }
    for (;;) {
      const size = frameSize(pending);
      if (size === null) break;
      const frame = pending.subarray(0, size);
      pending = pending.subarray(size);
      const text = frame[0] === 0x81 ? frame.subarray(size - payloadLength(frame)).toString() : null;
      if (text !== null && drop(text)) onDrop();
      else out.push(frame);
    }
    return Buffer.concat(out);
  };
}

function payloadLength(frame: Buffer): number {
  const len = frame[1]! & 0x7f;
  if (len === 126) return frame.readUInt16BE(2);
  if (len === 127) return Number(frame.readBigUInt64BE(2));
  return len;
}

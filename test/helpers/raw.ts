import WebSocket from 'ws';

/**
 * A raw Socket.IO-over-websocket client that writes frames as text, byte for byte: what an
 * attacker sends, without socket.io-client's encoder in the way (its recursive binary detection
 * overflows on the very payloads the server must survive). Speaks just enough of Engine.IO v4 /
 * Socket.IO v5: open, ping/pong, namespace connect, events with acks.
 */
export interface RawClient {
  ws: WebSocket;
  /** The `40/sync,{...}` answer: session data, or null when the namespace connect was refused. */
  connected: Promise<{ sid?: string; error?: { message: string; data?: { code: string } } }>;
  /** Every text frame received after the open packet. */
  frames: string[];
  /** Sends a raw text frame (Engine.IO packet type included, e.g. `42/sync,…`). */
  send(frame: string): void;
  /** Sends `42/sync,<id>[<event>,<payloadJson>]` and resolves with the ack's JSON text (or null on timeout). */
  request(event: string, payloadJson: string, timeoutMs?: number): Promise<string | null>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

const open = new Set<WebSocket>();

export async function rawConnect(url: string, authJson = '{}', headers: Record<string, string> = {}): Promise<RawClient> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, { headers });
  open.add(ws);
  const frames: string[] = [];
  const acks = new Map<number, (text: string) => void>();
  let nextId = 1;
  let resolveConnected!: RawClient['connected'] extends Promise<infer T> ? (v: T) => void : never;
  const connected = new Promise<Awaited<RawClient['connected']>>((r) => (resolveConnected = r));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => undefined);
  ws.on('message', (data) => {
    const text = data.toString();
    if (text.startsWith('0')) {
      ws.send(`40/sync,${authJson}`);
      return;
    }
    if (text === '2') return ws.send('3');
    frames.push(text);
    if (text.startsWith('40/sync,')) resolveConnected(JSON.parse(text.slice('40/sync,'.length)));
    else if (text.startsWith('44/sync,')) resolveConnected({ error: JSON.parse(text.slice('44/sync,'.length)) });
    const ack = /^43\/sync,(\d+)(.*)$/s.exec(text);
    if (ack) acks.get(Number(ack[1]))?.(ack[2]!);
  });
  ws.on('close', () => resolveConnected({ error: { message: 'closed before connect' } }));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    connected,
    frames,
    closed,
    send: (frame) => ws.readyState === WebSocket.OPEN && ws.send(frame),
    request(event, payloadJson, timeoutMs = 5000) {
      const id = nextId++;
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          acks.delete(id);
          resolve(null);
        }, timeoutMs);
        acks.set(id, (text) => {
          clearTimeout(timer);
          acks.delete(id);
          resolve(text);
        });
        if (ws.readyState === WebSocket.OPEN) ws.send(`42/sync,${id}[${JSON.stringify(event)},${payloadJson}]`);
      });
    },
    close() {
      open.delete(ws);
      ws.terminate();
    },
  };
}

export function closeAllRaw(): void {
  for (const ws of open) ws.terminate();
  open.clear();
}

/** JSON text of a value nested `depth` levels (arrays and objects alternating), built as text: no recursion anywhere. */
export function deepJson(depth: number, leaf = '1'): string {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    if (i % 2) {
      open += '{"k":';
      close = '}' + close;
    } else {
      open += '[';
      close = ']' + close;
    }
  }
  return open + leaf + close;
}

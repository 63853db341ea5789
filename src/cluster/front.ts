import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { TetherError } from '@tether/protocol';

/**
 * The embedded front of `node dist/main.js --cluster` (`npm start`): one TCP listener in the
 * primary that hands each connection, with the bytes it read to route it, to a worker process.
 * It replaces @socket.io/sticky's primary, whose hand-off loses data and which cannot tell a
 * ready worker from a starting or draining one (docs/ARCHITECTURE.md, "The embedded front").
 *
 * Three rules make it lossless:
 * 1. The primary reads a connection only until the end of its first request's headers, then stops
 *    reading it for good *before* sending it (stopReading). @socket.io/sticky did not: Node's
 *    handle passing leaves the sender's handle reading until the receiver's NODE_HANDLE_ACK and
 *    throws what it reads meanwhile away (`handle.onread = nop`), so the `40/sync` frame a client
 *    sends the moment the Engine.IO open packet arrives, or the rest of a request split over two
 *    TCP segments, could land in the primary and vanish: the client had its open packet and never
 *    a `session` (about 1 connect in 100 under load).
 * 2. Everything read is handed over with the socket and put back in front of the worker's stream.
 * 3. The primary keeps its own descriptor and those bytes until the worker confirms it took the
 *    socket. A worker that dies first (SIGKILL, crash, exit at the end of a drain) costs nothing:
 *    the connection goes to another worker. Node queues handles per channel (one in flight until
 *    acknowledged) and drops the queue without a word when the channel closes; with sticky those
 *    sockets stayed open in the primary, unanswered, until the client gave up (10–20 s).
 *
 * Routing: a request naming an Engine.IO session goes to the worker that owns it — the worker puts
 * its cluster id in every sid it issues (`<workerId>.<random>`), so the primary needs no session
 * table and cannot lose a race against a session-opened message. Everything else goes to the
 * least loaded worker that said it is ready and has not said it is draining. With none, the
 * primary answers 503 SERVER_DRAINING with `retry-after` itself.
 */

/** Worker → primary. */
type WorkerMessage =
  | { type: 'tether:front'; state: 'ready' | 'draining' }
  | { type: 'tether:front'; sessions: number; opened: boolean }
  | { type: 'tether:front'; taken: number };
/** Primary → worker, with the socket as the IPC handle. */
interface ConnectionMessage {
  type: 'tether:connection';
  id: number;
  head: Uint8Array;
}

const SID_IN_REQUEST_LINE = /^[A-Z]+ [^ ]*[?&]sid=(\d+)\./;
/** Node's own default header limit: a bigger head is not a request any worker would accept. */
const MAX_HEAD_BYTES = 16 * 1024;
/** A connection that has not sent its headers by then is dropped (slow-loris guard). */
const HEAD_TIMEOUT_MS = 10_000;
/** A hand-off counts towards its worker's load until its session is reported, at most this long. */
const IN_FLIGHT_TTL_MS = 2_000;
/**
 * The primary's descriptor of a hand-off the worker never confirmed is closed after this. Only a
 * handle Node failed to deliver (no descriptors left) stays unconfirmed while the worker lives;
 * closing a duplicate is harmless if the worker does take it later.
 */
const TAKEN_TIMEOUT_MS = 10_000;
const RETRY_AFTER_SEC = 1;

type SlotState = 'starting' | 'ready' | 'draining' | 'gone';

interface Slot {
  readonly worker: Worker;
  readonly label: string;
  state: SlotState;
  /** Engine.IO sessions the worker reported. */
  sessions: number;
  /** Send times of new-session hand-offs whose session has not been reported yet. */
  inFlight: number[];
  /** Hand-offs sent (or queued by Node) that the worker has not confirmed yet, by id. */
  transit: Map<number, HandOff>;
}

interface HandOff {
  socket: Socket;
  head: Buffer;
  sidWorker: number | undefined;
  newSession: boolean;
  timer?: NodeJS.Timeout;
}

export interface FrontEvents {
  /** A worker changed state (ready, draining) or went away (gone). */
  onState?(label: string, state: SlotState): void;
}

function httpResponse(status: string, body: string, extra: Record<string, string> = {}): string {
  const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close', ...extra };
  return `HTTP/1.1 ${status}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
}

const NO_WORKER_READY = httpResponse(
  '503 Service Unavailable',
  JSON.stringify({ error: new TetherError('SERVER_DRAINING', 'no worker is ready (starting or draining); connect again').toBody() }),
  { 'retry-after': String(RETRY_AFTER_SEC) },
);
const HEAD_TOO_LARGE = httpResponse('431 Request Header Fields Too Large', JSON.stringify({ error: new TetherError('INVALID_PAYLOAD', 'request headers too large').toBody() }));

/**
 * Stops this process reading a socket, for good: nothing arriving from now on is read here, it
 * waits in the kernel for the worker. Node has no public call for this on an accepted socket:
 * `pause()` stops only the stream, the handle keeps reading into its buffer, and Readable's
 * read-ahead (`maybeReadMore`, on the next tick) calls `_read`, which starts the handle again. So
 * `_read` becomes a no-op for this socket and the handle is stopped the way Node's own
 * back-pressure path does it (`onStreamRead`: `handle.reading = false; handle.readStop()`).
 */
function stopReading(socket: Socket): void {
  socket.pause();
  socket._read = () => undefined;
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop(): number } | null })._handle;
  if (handle?.reading) {
    handle.reading = false;
    handle.readStop();
  }
}

/** Undoes stopReading, for a connection the primary answers itself. */
function resumeReading(socket: Socket): void {
  delete (socket as { _read?: unknown })._read;
  socket.resume();
}

/** Answers and closes a connection the primary keeps (no hand-off). */
function answer(socket: Socket, response: string): void {
  // Closing with unread request bytes would reset the connection, and a client may then never see
  // the answer: read and discard until the client closes, bounded.
  socket.on('data', () => undefined);
  resumeReading(socket);
  socket.end(response);
  socket.setTimeout(5_000, () => socket.destroy());
}

export class Front {
  readonly server: Server;
  private readonly slots = new Map<number, Slot>();
  private turn = 0;
  private handOffs = 0;

  constructor(private readonly events: FrontEvents = {}) {
    // noDelay as node:http sets it on the sockets it accepts: the option lives on the socket, so
    // the worker inherits it, and its small writes (101, open packet, connect ack, `session`)
    // would otherwise wait on Nagle's algorithm and the peer's delayed ACK (tens of ms each).
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Tracks a forked worker; it receives connections once it reports ready. */
  add(worker: Worker, label: string): void {
    const slot: Slot = { worker, label, state: 'starting', sessions: 0, inFlight: [], transit: new Map() };
    this.slots.set(worker.id, slot);
    worker.on('message', (msg: WorkerMessage) => this.onMessage(slot, msg));
    worker.on('error', () => undefined); // a failed send is reported to its callback; nothing else to do
    // 'disconnect' (IPC closed) comes before 'exit': stop routing at the first of the two.
    worker.once('disconnect', () => this.gone(slot));
    worker.once('exit', () => this.gone(slot));
  }

  /** Workers by state, for logs and tests. */
  states(): Record<string, SlotState> {
    return Object.fromEntries([...this.slots.values()].map((s) => [s.label, s.state]));
  }

  private onMessage(slot: Slot, msg: WorkerMessage): void {
    if (msg?.type !== 'tether:front') return;
    if ('taken' in msg) {
      // The worker has the socket: the primary's duplicate descriptor can go. Closing a duplicate
      // does not shut the connection down.
      const handOff = slot.transit.get(msg.taken);
      if (!handOff) return;
      slot.transit.delete(msg.taken);
      clearTimeout(handOff.timer);
      handOff.socket.destroy();
    } else if ('state' in msg) {
      // Draining is final: a late "ready" (a worker told to stop while starting) must not undo it.
      if (slot.state === 'gone' || (slot.state === 'draining' && msg.state === 'ready')) return;
      slot.state = msg.state;
      this.events.onState?.(slot.label, msg.state);
    } else {
      slot.sessions = msg.sessions;
      if (msg.opened) slot.inFlight.shift();
    }
  }

  private gone(slot: Slot): void {
    if (slot.state === 'gone') return;
    slot.state = 'gone';
    this.slots.delete(slot.worker.id);
    this.events.onState?.(slot.label, 'gone');
    // Whatever the worker did not confirm is still whole here (descriptor and bytes): route it again.
    // That includes handles Node had queued on the channel, which it drops without a word.
    const pending = [...slot.transit.values()];
    slot.transit.clear();
    for (const handOff of pending) {
      clearTimeout(handOff.timer);
      this.route(handOff);
    }
  }

  private accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    let head: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), HEAD_TIMEOUT_MS);
    const onEnd = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      const searchFrom = Math.max(0, head.length - 3);
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n', searchFrom);
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) {
          clearTimeout(timer);
          socket.off('data', onData);
          answer(socket, HEAD_TOO_LARGE);
        }
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      // Whatever the stream buffered is taken before the handle stops: read() may restart reads,
      // which is harmless only while they still arrive here.
      const buffered = socket.readableLength > 0 ? (socket.read() as Buffer | null) : null;
      if (buffered) head = Buffer.concat([head, buffered]);
      stopReading(socket);
      const requestLine = head.toString('latin1', 0, head.indexOf('\r\n'));
      const sid = SID_IN_REQUEST_LINE.exec(requestLine);
      const isEngine = / \/socket\.io\//.test(requestLine);
      this.route({ socket, head, sidWorker: sid ? Number(sid[1]) : undefined, newSession: isEngine && !sid });
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
  }

  private route(handOff: HandOff, exclude?: Slot): void {
    const owner = handOff.sidWorker === undefined ? undefined : this.slots.get(handOff.sidWorker);
    // A session's requests go to its worker even while it drains: it is the one that can answer
    // them. A session whose worker is gone gets "unknown sid" from any worker and reconnects.
    const slot = owner && owner !== exclude && (owner.state === 'ready' || owner.state === 'draining') ? owner : this.pick(exclude);
    if (handOff.socket.destroyed) return;
    if (!slot) return answer(handOff.socket, NO_WORKER_READY);
    const id = ++this.handOffs;
    slot.transit.set(id, handOff);
    handOff.timer = setTimeout(() => slot.transit.delete(id) && handOff.socket.destroy(), TAKEN_TIMEOUT_MS);
    if (handOff.newSession) slot.inFlight.push(Date.now());
    const message: ConnectionMessage = { type: 'tether:connection', id, head: handOff.head };
    // keepOpen: the primary keeps its descriptor until the worker says `taken`, so a worker that
    // dies with the handle in its queue costs the client nothing (Node would close it at once).
    slot.worker.send(message, handOff.socket, { keepOpen: true }, (err: Error | null) => {
      if (!err || !slot.transit.delete(id)) return;
      clearTimeout(handOff.timer);
      this.route(handOff, slot);
    });
  }

  /** The ready worker with the fewest sessions plus hand-offs not yet reported; ties rotate. */
  private pick(exclude?: Slot): Slot | undefined {
    const slots = [...this.slots.values()];
    const now = Date.now();
    let best: Slot | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[(this.turn + i) % slots.length]!;
      if (slot.state !== 'ready' || slot === exclude || !slot.worker.isConnected()) continue;
      while (slot.inFlight.length > 0 && now - slot.inFlight[0]! > IN_FLIGHT_TTL_MS) slot.inFlight.shift();
      const load = slot.sessions + slot.inFlight.length + slot.transit.size;
      if (load < bestLoad) {
        best = slot;
        bestLoad = load;
      }
    }
    this.turn++;
    return best;
  }
}

/** A worker's side of the front: what it tells the primary. */
export interface FrontLink {
  /** Connections may be routed here. */
  ready(): void;
  /** No new sessions: only requests of this worker's own sessions are routed here from now on. */
  draining(): void;
}

interface EngineLike {
  clientsCount: number;
  generateId(req: unknown): string | PromiseLike<string>;
  on(event: 'connection', listener: (socket: { once(event: 'close', listener: () => void): void }) => void): void;
}

/**
 * Serves the connections the primary hands over on `server` (never listening itself) and reports
 * to the primary. Must run in a cluster worker.
 */
export function joinFront(server: HttpServer, engine: EngineLike): FrontLink {
  const worker = cluster.worker;
  if (!worker) throw new Error('joinFront: not a cluster worker');
  const send = (msg: WorkerMessage) => {
    if (process.connected) process.send!(msg, undefined, {}, () => undefined);
  };
  // The primary routes a connection by its first request only, so a kept-alive connection could
  // carry another session's request to the wrong worker.
  server.prependListener('request', (_req, res) => res.setHeader('connection', 'close'));
  engine.generateId = () => `${worker.id}.${randomBytes(15).toString('base64url')}`;
  engine.on('connection', (socket) => {
    send({ type: 'tether:front', sessions: engine.clientsCount, opened: true });
    socket.once('close', () => send({ type: 'tether:front', sessions: engine.clientsCount, opened: false }));
  });
  process.on('message', (msg: ConnectionMessage, handle: unknown) => {
    if (msg?.type !== 'tether:connection') return;
    if (!handle) return;
    // First, before the socket is read or written: from this message on the primary lets go.
    send({ type: 'tether:front', taken: msg.id });
    const socket = handle as Socket;
    server.emit('connection', socket);
    // The socket has not read anything yet (reads are delivered after this tick), so the primary's
    // bytes come first.
    if (msg.head.length > 0) socket.unshift(Buffer.from(msg.head.buffer, msg.head.byteOffset, msg.head.byteLength));
  });
  return {
    ready: () => send({ type: 'tether:front', state: 'ready' }),
    draining: () => send({ type: 'tether:front', state: 'draining' }),
  };
}

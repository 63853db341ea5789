import { io, type Socket } from 'socket.io-client';
import { SignJWT } from 'jose';
import type { Ack, ClientToServerEvents, ServerToClientEvents, SessionPayload } from '@tether/protocol';
import { JWT_SECRET, SERVICE_TOKEN } from './workers.ts';

export type TestSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const open = new Set<TestSocket>();

export async function signJwt(claims: { sub: string; name?: string; rooms?: string[]; role?: string }, opts: { expiresIn?: string; secret?: string } = {}): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(opts.expiresIn ?? '1h')
    .sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));
}

export interface ConnectOptions {
  auth?: Record<string, unknown>;
  transports?: ('websocket' | 'polling')[];
  reconnection?: boolean;
}

/** A real socket.io-client connected to /sync; resolves with its `session` event. */
export async function connect(url: string, opts: ConnectOptions = {}): Promise<{ socket: TestSocket; session: SessionPayload }> {
  const socket: TestSocket = io(`${url}/sync`, {
    transports: opts.transports ?? ['websocket'],
    auth: opts.auth ?? {},
    reconnection: opts.reconnection ?? false,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    forceNew: true,
    timeout: 10_000,
  });
  open.add(socket);
  // Record from the first packet: events that arrive in the same chunk as `session` (an inbox
  // delivery, a rejoin replay) are emitted before the caller can attach a listener.
  record(socket);
  const session = await new Promise<SessionPayload>((resolve, reject) => {
    // Generous: under a loaded CI machine a handshake through the sticky primary can take seconds.
    const timer = setTimeout(() => reject(new Error('no session event within 10s')), 10_000);
    socket.once('session', (s) => {
      clearTimeout(timer);
      resolve(s);
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return { socket, session };
}

/** Connects expecting refusal; resolves with the connect_error's data ({ code, message }). */
export async function connectRefused(url: string, auth: Record<string, unknown>): Promise<{ code: string; message: string }> {
  const socket: TestSocket = io(`${url}/sync`, { transports: ['websocket'], auth, reconnection: false, forceNew: true });
  open.add(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('neither connect nor connect_error within 5s')), 5000);
    socket.once('connect', () => {
      clearTimeout(timer);
      reject(new Error('connected but expected refusal'));
    });
    socket.once('connect_error', (err) => {
      clearTimeout(timer);
      socket.close();
      resolve((err as Error & { data: { code: string; message: string } }).data);
    });
  });
}

/** Emits a request and waits for its ack. */
export async function request<E extends keyof ClientToServerEvents>(
  socket: TestSocket,
  event: E,
  payload: Parameters<ClientToServerEvents[E]>[0],
  timeoutMs = 5000,
): Promise<Parameters<Parameters<ClientToServerEvents[E]>[1]>[0]> {
  return (await (socket.timeout(timeoutMs) as unknown as { emitWithAck(ev: string, p: unknown): Promise<unknown> }).emitWithAck(event, payload)) as Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];
}

/** Like request, but asserts ok and returns data. */
export async function ok<E extends keyof ClientToServerEvents>(socket: TestSocket, event: E, payload: Parameters<ClientToServerEvents[E]>[0]) {
  const res = (await request(socket, event, payload)) as Ack<unknown>;
  if (!res.ok) throw new Error(`${event} failed: ${res.error.code} ${res.error.message}`);
  return res.data as Extract<Parameters<Parameters<ClientToServerEvents[E]>[1]>[0], { ok: true }>['data'];
}

const recordings = new WeakMap<TestSocket, { name: string; payload: any }[]>();

/**
 * Every event a socket receives, in arrival order. Sockets from connect() are recorded from
 * their first packet; the same array is returned on every call.
 */
export function record(socket: TestSocket): { name: string; payload: any }[] {
  let events = recordings.get(socket);
  if (!events) {
    const list: { name: string; payload: any }[] = [];
    socket.onAny((name: string, payload: unknown) => list.push({ name, payload }));
    recordings.set(socket, (events = list));
  }
  return events;
}

/** Waits until `check` (sync or async) holds, polling, bounded. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function createRoomHttp(url: string, body: Record<string, unknown> = {}, sub = 'host-user'): Promise<{ id: string; code: string }> {
  const res = await fetch(`${url}/v1/rooms`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await signJwt({ sub, name: sub })}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create room: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; code: string };
}

export async function publishHttp(url: string, roomId: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${url}/v1/rooms/${roomId}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${SERVICE_TOKEN}` },
    body: JSON.stringify(body),
  });
}

/** Registers a socket created elsewhere so closeAll() closes it (a reconnecting socket keeps the test process alive). */
export function trackSocket<T extends TestSocket>(socket: T): T {
  open.add(socket);
  return socket;
}

export function closeAll(): void {
  for (const s of open) s.close();
  open.clear();
}

import type { IncomingMessage } from 'node:http';
import type { RoomClosed, SequencedName } from '@tether/protocol';
import type { Conn, ConnData, EventPayload, Fanout, Joined, ScriptBroadcast, ServerEvent } from '../fanout/port.js';
import type { BroadcastMarks } from './marks.js';
import type { TetherNamespace, TetherSocket } from './types.js';

/**
 * Socket.IO room names. Only the transport knows them: domains speak of rooms and users.
 * `room:` and `user:` never collide with socket ids (20 base64url characters).
 */
const ROOM = 'room:';
const USER = 'user:';
export const socketRoom = (roomId: string): string => ROOM + roomId;
export const userRoom = (userId: string): string => USER + userId;

type Emit = (event: string, payload: unknown) => boolean;

/**
 * A connection as domains see it, over one Socket.IO socket. Created per request and per hook
 * (a few fields, short-lived) rather than kept per socket: idle connections cost no more for it.
 */
export class SocketConn implements Conn {
  constructor(
    readonly socket: TetherSocket,
    private readonly addressOf: (req: IncomingMessage) => string,
    private readonly subscribed: (room: string) => Promise<Joined>,
  ) {}

  get id(): string {
    return this.socket.id;
  }
  get data(): ConnData {
    return this.socket.data;
  }
  get address(): string {
    // The handshake resolves it from the request (released once the connection is up).
    return (this.socket.data as Partial<ConnData>).address ?? this.addressOf(this.socket.request);
  }
  get connected(): boolean {
    return this.socket.connected;
  }
  emit<E extends ServerEvent>(event: E, payload: EventPayload<E>): void {
    (this.socket.emit as unknown as Emit)(event, payload);
  }
  /** Resolves once this worker receives the room's broadcasts (or `late` says when): a fill from the log read after it misses nothing. */
  async joinRoom(roomId: string): Promise<Joined> {
    await this.socket.join(socketRoom(roomId));
    return this.subscribed(socketRoom(roomId));
  }
  async leaveRoom(roomId: string): Promise<void> {
    await this.socket.leave(socketRoom(roomId));
  }
  async joinUser(userId: string): Promise<void> {
    await this.socket.join(userRoom(userId));
    await this.subscribed(userRoom(userId));
  }
  toOthersInRoom<E extends ServerEvent>(roomId: string, event: E, payload: EventPayload<E>): void {
    (this.socket.to(socketRoom(roomId)).emit as unknown as Emit)(event, payload);
  }
  closeTransport(): void {
    this.socket.conn.close();
  }
}

/** The fanout port over the /sync namespace and its Redis adapter. */
export class SocketIoFanout implements Fanout {
  constructor(
    private readonly nsp: TetherNamespace,
    private readonly addressOf: (req: IncomingMessage) => string,
    private readonly marks: BroadcastMarks,
    /** From the adapter: when a just-joined room's broadcasts reach this worker (see transport/io.ts). */
    private readonly subscribed: (room: string) => Promise<Joined>,
    /** From the adapter: the message a script publishes to broadcast (null: scripts cannot). */
    private readonly envelope: ((room: string, event: string, except: readonly string[]) => ScriptBroadcast) | null,
  ) {
    marks.watch(nsp.adapter);
    nsp.on('session:replace', ({ socketId, clientId, graceMs }) => this.replaceLocal(socketId, clientId, graceMs));
    nsp.on('room:removed', ({ roomId, connId, closed }) => this.removeLocal(roomId, connId, closed));
  }

  toRoom<E extends ServerEvent>(roomId: string, event: E, payload: EventPayload<E>, except?: { connId: string }): void {
    const target = except ? this.nsp.to(socketRoom(roomId)).except(except.connId) : this.nsp.to(socketRoom(roomId));
    (target.emit as unknown as Emit)(event, payload);
  }

  fromScript(roomId: string, event: SequencedName, except?: { connId: string }): ScriptBroadcast | null {
    return this.envelope ? this.envelope(socketRoom(roomId), event, except ? [except.connId] : []) : null;
  }

  toRoomLocal<E extends ServerEvent>(roomId: string, event: E, payload: EventPayload<E>): void {
    (this.nsp.local.to(socketRoom(roomId)).emit as unknown as Emit)(event, payload);
  }

  toConnection<E extends ServerEvent>(connId: string, event: E, payload: EventPayload<E>): void {
    // A socket id is a Socket.IO room of its own: the adapter finds it on whichever worker holds it.
    (this.nsp.to(connId).emit as unknown as Emit)(event, payload);
  }

  removeFromRoom(roomId: string, connId?: string, closed?: RoomClosed): void {
    // Every worker checks its own sockets: the stream membership and the connection's cached
    // code room must go together, or a kicked client could not join another room.
    this.removeLocal(roomId, connId, closed);
    this.nsp.serverSideEmit('room:removed', { roomId, ...(connId ? { connId } : {}), ...(closed ? { closed } : {}) });
  }

  private removeLocal(roomId: string, connId?: string, closed?: RoomClosed): void {
    const ids = connId ? [connId] : [...(this.nsp.adapter.rooms.get(socketRoom(roomId)) ?? [])];
    for (const id of ids) {
      const socket = this.nsp.sockets.get(id);
      if (!socket) continue;
      if (closed && socket.rooms.has(socketRoom(roomId))) socket.emit('room:closed', closed);
      void socket.leave(socketRoom(roomId));
      if (socket.data.roomId === roomId) socket.data.roomId = null;
    }
  }

  toUser<E extends ServerEvent>(userId: string, event: E, payload: EventPayload<E>): void {
    (this.nsp.to(userRoom(userId)).emit as unknown as Emit)(event, payload);
  }

  replace(connId: string, clientId: string, epoch: number, graceMs: number): void {
    if (!this.replaceLocal(connId, clientId, graceMs)) this.nsp.serverSideEmit('session:replace', { socketId: connId, clientId, epoch, graceMs });
  }

  /** Handles a replacement for a socket of this worker. false: the socket is not here. */
  private replaceLocal(socketId: string, clientId: string, graceMs: number): boolean {
    const old = this.nsp.sockets.get(socketId);
    if (!old) return false;
    old.data.replaced = true;
    old.emit('session:replaced', { clientId, reason: 'takeover' });
    // The timer lives on the worker that holds the socket: if this worker dies, the socket dies
    // with it, so no timer anywhere else is needed (or correct).
    setTimeout(() => old.disconnect(true), graceMs).unref();
    return true;
  }

  deliveredSeq(roomId: string): number {
    return this.marks.highest(socketRoom(roomId));
  }

  streamHold(roomId: string): number | null {
    return this.marks.hold(socketRoom(roomId));
  }

  *localRooms(): Iterable<string> {
    for (const name of this.nsp.adapter.rooms.keys()) if (name.startsWith(ROOM)) yield name.slice(ROOM.length);
  }

  *localConns(): Iterable<Conn> {
    for (const socket of this.nsp.sockets.values()) yield new SocketConn(socket, this.addressOf, this.subscribed);
  }

  conn(socket: TetherSocket): Conn {
    return new SocketConn(socket, this.addressOf, this.subscribed);
  }
}

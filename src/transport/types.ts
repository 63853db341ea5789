import type { Namespace, Server, Socket } from 'socket.io';
import type { ConnData } from '../fanout/port.js';
import type { ClientToServerEvents, RoomClosed, ServerToClientEvents } from '@tether/protocol';

/** Between workers (Socket.IO serverSideEmit): server-only, never on the wire to clients. */
export interface InterServerEvents {
  /** A newer connection of `clientId` exists: the worker holding `socketId` closes it after `graceMs`. */
  'session:replace': (payload: { socketId: string; clientId: string; epoch: number; graceMs: number }) => void;
  /** Take one connection (or every one) out of a room's stream, and out of its cached room. */
  'room:removed': (payload: { roomId: string; connId?: string; closed?: RoomClosed }) => void;
}

export type TetherServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, ConnData>;
export type TetherNamespace = Namespace<ClientToServerEvents, ServerToClientEvents, InterServerEvents, ConnData>;
export type TetherSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, ConnData>;

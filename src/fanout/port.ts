import type { RoomClosed, SequencedName, ServerToClientEvents } from '@tether/protocol';

/**
 * What domains see of the transport. Domain services and handlers emit through these interfaces
 * and never import Socket.IO or transport/: the transport implements them (transport/fanout.ts),
 * and tests can implement them in a few lines.
 */
export type ServerEvent = keyof ServerToClientEvents;
export type EventPayload<E extends ServerEvent> = Parameters<ServerToClientEvents[E]>[0];

/** Everything a server-side connection carries between requests (cluster-wide facts live in Redis). */
export interface ConnData {
  clientId: string;
  userId: string | null;
  name: string;
  /** Connection epoch of this clientId: every (re)connect increments it. */
  epoch: number;
  /** The worker process instance whose node index holds this connection. */
  nodeInstance: string;
  connectedAt: number;
  /** The code-joined room this connection is in, if any (cache of the session's roomId). */
  roomId: string | null;
  /** Program rooms from the JWT claim presented on this connect. */
  programRooms: string[];
  /** A newer connection of the same clientId exists: requests are refused. */
  replaced: boolean;
  /**
   * The client's address (TCP peer, or X-Forwarded-For from a trusted proxy), resolved once at the
   * handshake: the transport releases the upgrade request after it.
   */
  address: string;
}

/** A connection's join of a room's stream. */
export interface Joined {
  /** null: this worker already receives the room's broadcasts. Otherwise settles once it does. */
  late: Promise<void> | null;
}

/** One client connection, as a request handler or a connection hook sees it. */
export interface Conn {
  readonly id: string;
  readonly data: ConnData;
  /** The client's address (TCP peer, or X-Forwarded-For from a trusted proxy). */
  readonly address: string;
  readonly connected: boolean;
  emit<E extends ServerEvent>(event: E, payload: EventPayload<E>): void;
  /**
   * From now on this connection receives the room's broadcasts. Resolves once this worker receives
   * them, or after a bounded wait: then `late` settles when it does (a fill read before that may
   * have missed what was appended meanwhile).
   */
  joinRoom(roomId: string): Promise<Joined>;
  leaveRoom(roomId: string): Promise<void>;
  /** From now on this connection receives what is sent to the user (every device). */
  joinUser(userId: string): Promise<void>;
  /** Sends to the others in the room (everyone but this connection), across workers. */
  toOthersInRoom<E extends ServerEvent>(roomId: string, event: E, payload: EventPayload<E>): void;
  /** Closes the transport: a client that should come back (drain, fencing) reconnects. */
  closeTransport(): void;
}

/**
 * A broadcast to a room that the Redis script appending its event sends itself, in the same step:
 * `channel` gets `head`, the logged payload (the event JSON with its seq), then `tail`.
 */
export interface ScriptBroadcast {
  channel: string;
  head: string;
  tail: string;
}

export interface Fanout {
  /** To every connection in the room on every worker. */
  toRoom<E extends ServerEvent>(roomId: string, event: E, payload: EventPayload<E>, except?: { connId: string }): void;
  /**
   * How the script that appends `event` to the room's log broadcasts it itself, so that every
   * worker receives the room's sequenced events in seq order; null where the transport cannot (the
   * caller then broadcasts with toRoom once the script has returned).
   */
  fromScript(roomId: string, event: SequencedName, except?: { connId: string }): ScriptBroadcast | null;
  /** To this worker's connections in the room only (what this worker read from Redis for them). */
  toRoomLocal<E extends ServerEvent>(roomId: string, event: E, payload: EventPayload<E>): void;
  /** To one connection, wherever it lives. */
  toConnection<E extends ServerEvent>(connId: string, event: E, payload: EventPayload<E>): void;
  /**
   * Takes one connection (wherever it lives), or every connection, out of the room's stream. With
   * `closed`, each worker first tells its own connections in the room `room:closed`: told and
   * removed in one step per worker, so no removal can overtake the notice (on a Redis Cluster a
   * room's broadcasts and this cross-worker request travel on different channels).
   */
  removeFromRoom(roomId: string, connId?: string, closed?: RoomClosed): void;
  /** To every connection of the user on every worker. */
  toUser<E extends ServerEvent>(userId: string, event: E, payload: EventPayload<E>): void;
  /**
   * The connection `connId`, wherever it lives, was replaced by a newer one of its clientId: it is
   * told `session:replaced` at once and closed after `graceMs`, by the worker that holds it.
   */
  replace(connId: string, clientId: string, epoch: number, graceMs: number): void;
  /** Rooms this worker's connections are in (for room heads). */
  localRooms(): Iterable<string>;
  /**
   * The highest seq of a sequenced event this worker's connections of the room were sent, from
   * any worker (0: none since this worker holds the room). For room heads: a room whose stream
   * stopped reaching this worker.
   */
  deliveredSeq(roomId: string): number;
  /**
   * Which continuous hold of the room's stream this worker is in (null: none of its connections is
   * in the room). The same answer before and after some work means deliveredSeq saw every broadcast
   * to the room that this worker processed meanwhile.
   */
  streamHold(roomId: string): number | null;
  /** This worker's connections (for fencing). */
  localConns(): Iterable<Conn>;
}

import { SEQUENCED_EVENTS } from '@tether/protocol';

const SEQUENCED = new Set<string>(SEQUENCED_EVENTS);
/** socket.io-adapter's MessageType.BROADCAST (the sharded adapter's message type for a broadcast). */
const CLUSTER_BROADCAST = 3;

/** What BroadcastMarks needs of a namespace's adapter. */
interface RoomsAdapter {
  readonly rooms: ReadonlyMap<string, unknown>;
  on(event: 'create-room' | 'delete-room', listener: (room: string) => void): unknown;
}

/**
 * The highest seq of a sequenced event broadcast to each Socket.IO room of this worker, whichever
 * worker published it: every cross-worker broadcast passes the adapter's parser — encoded here for
 * this worker's own broadcasts, decoded for the others' — and that is where it is observed. Only
 * rooms this worker's connections are in are kept; a room is forgotten when its last local
 * connection leaves it.
 *
 * Room heads use it to tell a busy room whose stream reaches this worker from one whose broadcasts
 * stopped arriving here (a broken subscription): they need not send a head for every interval a
 * room is busy, only when it settles or when this worker fell behind.
 */
export class BroadcastMarks {
  private readonly marks = new Map<string, number>();
  /** Each room this worker holds → which hold it is (a room let go and taken again is a new one). */
  private readonly holds = new Map<string, number>();
  private lastHold = 0;
  private adapter: RoomsAdapter | null = null;

  /** Starts keeping marks for the rooms of this adapter (the namespace's, once it exists). */
  watch(adapter: RoomsAdapter): void {
    this.adapter = adapter;
    for (const room of adapter.rooms.keys()) this.holds.set(room, ++this.lastHold);
    adapter.on('create-room', (room) => this.holds.set(room, ++this.lastHold));
    adapter.on('delete-room', (room) => {
      this.marks.delete(room);
      this.holds.delete(room);
    });
  }

  /**
   * Which continuous hold of `room` this worker is in (null: it holds no connection in it). Equal
   * answers at two moments mean every broadcast to the room this worker processed in between was
   * observed here.
   */
  hold(room: string): number | null {
    return this.holds.get(room) ?? null;
  }

  /**
   * An adapter message: the classic adapter's `[uid, packet, opts]`, or the sharded adapter's
   * (socket.io-adapter's ClusterAdapter, on a Redis Cluster) `{ type: 3, data: { packet, opts } }`
   * (3: BROADCAST). Anything else (requests, responses, heartbeats) is ignored.
   */
  observe(msg: unknown): void {
    if (!this.adapter) return;
    let packet: { data?: unknown } | null;
    let opts: { rooms?: unknown } | null;
    if (Array.isArray(msg) && msg.length === 3) {
      packet = msg[1] as { data?: unknown } | null;
      opts = msg[2] as { rooms?: unknown } | null;
    } else if (msg && typeof msg === 'object' && (msg as { type?: unknown }).type === CLUSTER_BROADCAST) {
      const data = (msg as { data?: { packet?: { data?: unknown }; opts?: { rooms?: unknown } } }).data;
      packet = data?.packet ?? null;
      opts = data?.opts ?? null;
    } else {
      return;
    }
    const data = packet?.data;
    if (!Array.isArray(data) || typeof data[0] !== 'string' || !SEQUENCED.has(data[0])) return;
    const seq = (data[1] as { seq?: unknown } | null)?.seq;
    const rooms = opts?.rooms;
    if (typeof seq !== 'number' || !Array.isArray(rooms)) return;
    for (const room of rooms) {
      if (typeof room !== 'string' || !this.adapter.rooms.has(room)) continue;
      if (seq > (this.marks.get(room) ?? 0)) this.marks.set(room, seq);
    }
  }

  /** The highest seq broadcast to the Socket.IO room `room` since this worker holds it; 0: none. */
  highest(room: string): number {
    return this.marks.get(room) ?? 0;
  }
}

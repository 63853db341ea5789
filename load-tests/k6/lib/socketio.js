/**
 * Engine.IO v4 / Socket.IO v5 over a bare websocket — PURE: no imports, no k6 or Node APIs.
 *
 * Runs unchanged in k6 (goja: plain ES2017, no `?.`, `??` or class fields) and in Node
 * (unit tests, the k6 shim). The transport is injected: `send(frame)` and `close()` functions;
 * incoming text frames are fed to `client.handleFrame(frame)`.
 *
 * Wire format (one engine.io packet per websocket frame):
 *   engine.io   <type>[data]             0 open{json} 1 close 2 ping 3 pong 4 message 5 upgrade 6 noop
 *   socket.io   <type>[<nsp>,][<id>][<json>]   carried in an engine.io `4` message
 *               0 CONNECT 1 DISCONNECT 2 EVENT 3 ACK 4 CONNECT_ERROR (5/6 binary: unsupported)
 * The namespace is written for every namespace except "/", followed by a comma, so on /sync:
 *   40/sync,{"token":"…"}          connect with auth        40/sync,{"sid":"…"}  connect ack
 *   44/sync,{"message":"…","data":{…}}  connect_error      41/sync,            disconnect
 *   42/sync,["room:join",{…}]      event                    42/sync,7["room:join",{…}]  event + ack request 7
 *   43/sync,7[{"ok":true,…}]       ack 7
 * EIO4: the SERVER pings (`2`) every pingInterval and the client must answer `3` within pingTimeout.
 */

export const DEFAULT_NSP = '/sync';
export const SOCKET_PATH = '/socket.io/';

/** engine.io packet types, as the character that starts the frame. */
export const ENGINE = { OPEN: '0', CLOSE: '1', PING: '2', PONG: '3', MESSAGE: '4', UPGRADE: '5', NOOP: '6' };
const ENGINE_NAMES = ['open', 'close', 'ping', 'pong', 'message', 'upgrade', 'noop'];

/** socket.io packet types. */
export const PACKET = { CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 };

/** Event names socket.io reserves: a server can never emit them as events. */
const RESERVED_EVENTS = ['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'];

/** Tether's sequenced room events (src/protocol/events.ts SequencedEvents): payload has roomId + seq. */
export const SEQUENCED_EVENTS = [
  'room:participant:joined',
  'room:participant:left',
  'room:presence',
  'room:event',
  'playback:start',
  'playback:pause',
  'playback:seek',
  'playback:stop',
  'playback:control',
];

/** Engine.IO frames that carry no socket.io packet. */
export const PING_FRAME = ENGINE.PING;
export const PONG_FRAME = ENGINE.PONG;

function isObject(v) {
  return Object.prototype.toString.call(v) === '[object Object]';
}

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

/**
 * websocket URL of the engine.io endpoint for an HTTP(S) base URL:
 *   http://h:3000 -> ws://h:3000/socket.io/?EIO=4&transport=websocket   (https -> wss)
 */
export function engineUrl(target, path) {
  let base = String(target || 'http://127.0.0.1:3000').replace(/\/+$/, '');
  if (/^https:\/\//i.test(base)) base = 'wss://' + base.slice(8);
  else if (/^http:\/\//i.test(base)) base = 'ws://' + base.slice(7);
  else if (!/^wss?:\/\//i.test(base)) base = 'ws://' + base;
  let p = path || SOCKET_PATH;
  if (p.charAt(0) !== '/') p = '/' + p;
  if (p.charAt(p.length - 1) !== '/') p += '/';
  return base + p + '?EIO=4&transport=websocket';
}

/** HTTP base URL (no trailing slash) for a ws:// or http:// target. */
export function httpBase(target) {
  let base = String(target || 'http://127.0.0.1:3000').replace(/\/+$/, '');
  if (/^wss:\/\//i.test(base)) return 'https://' + base.slice(6);
  if (/^ws:\/\//i.test(base)) return 'http://' + base.slice(5);
  if (!/^https?:\/\//i.test(base)) return 'http://' + base;
  return base;
}

// ---------------------------------------------------------------------------------------------
// engine.io framing
// ---------------------------------------------------------------------------------------------

/** Encodes one engine.io packet. `type` is a name ('ping', 'message'…) or its digit. */
export function encodeEngine(type, data) {
  let t = type;
  const idx = ENGINE_NAMES.indexOf(type);
  if (idx >= 0) t = String(idx);
  if (typeof t !== 'string' || t.length !== 1 || t < '0' || t > '6') throw new Error('unknown engine.io packet type: ' + type);
  if (data === undefined || data === null) return t;
  return t + (typeof data === 'string' ? data : JSON.stringify(data));
}

/**
 * Decodes one websocket frame as an engine.io packet: `{ type, data }`, type one of
 * open|close|ping|pong|message|upgrade|noop, or `binary` for a non-string frame (EIO4 sends binary
 * message data as raw binary frames; Tether never does). `open` data is the parsed handshake.
 */
export function decodeEngine(frame) {
  if (typeof frame !== 'string') return { type: 'binary', data: frame };
  if (frame.length === 0) throw new Error('empty engine.io packet');
  const idx = frame.charCodeAt(0) - 48;
  if (idx < 0 || idx > 6) throw new Error('unknown engine.io packet type: ' + JSON.stringify(frame.charAt(0)));
  const type = ENGINE_NAMES[idx];
  const data = frame.slice(1);
  if (type === 'open') {
    let hs;
    try {
      hs = JSON.parse(data);
    } catch (e) {
      throw new Error('invalid engine.io open packet: ' + data.slice(0, 80));
    }
    if (!isObject(hs) || typeof hs.sid !== 'string') throw new Error('invalid engine.io open packet: no sid');
    return { type: type, data: hs };
  }
  return { type: type, data: data };
}

// ---------------------------------------------------------------------------------------------
// socket.io framing (protocol v5)
// ---------------------------------------------------------------------------------------------

/** Encodes a socket.io packet `{ type, nsp?, id?, data? }` (without the engine.io `4`). */
export function encodePacket(packet) {
  const type = packet.type;
  if (type === PACKET.BINARY_EVENT || type === PACKET.BINARY_ACK) throw new Error('binary socket.io packets are not supported');
  if (typeof type !== 'number' || type < 0 || type > 6 || Math.floor(type) !== type) throw new Error('unknown socket.io packet type: ' + type);
  let s = String(type);
  if (packet.nsp && packet.nsp !== '/') {
    if (packet.nsp.charAt(0) !== '/' || packet.nsp.indexOf(',') >= 0) throw new Error('invalid namespace: ' + packet.nsp);
    s += packet.nsp + ',';
  }
  if (packet.id !== undefined && packet.id !== null) {
    if (!(packet.id >= 0) || Math.floor(packet.id) !== packet.id) throw new Error('invalid ack id: ' + packet.id);
    s += String(packet.id);
  }
  if (packet.data !== undefined && packet.data !== null) s += JSON.stringify(packet.data);
  return s;
}

function payloadValid(type, data) {
  switch (type) {
    case PACKET.CONNECT:
      return data === undefined || isObject(data);
    case PACKET.DISCONNECT:
      return data === undefined;
    case PACKET.CONNECT_ERROR:
      return typeof data === 'string' || isObject(data);
    case PACKET.EVENT:
    case PACKET.BINARY_EVENT:
      return (
        Array.isArray(data) &&
        data.length > 0 &&
        (typeof data[0] === 'number' || (typeof data[0] === 'string' && RESERVED_EVENTS.indexOf(data[0]) === -1))
      );
    case PACKET.ACK:
    case PACKET.BINARY_ACK:
      return Array.isArray(data);
    default:
      return false;
  }
}

/**
 * Decodes a socket.io packet string (the engine.io message data) into `{ type, nsp, id?, data?,
 * attachments? }`. nsp is "/" when absent. Throws on malformed input.
 */
export function decodePacket(str) {
  if (typeof str !== 'string' || str.length === 0) throw new Error('empty socket.io packet');
  const type = str.charCodeAt(0) - 48;
  if (type < 0 || type > 6) throw new Error('unknown socket.io packet type: ' + JSON.stringify(str.charAt(0)));
  const packet = { type: type, nsp: '/' };
  let i = 1;
  if (type === PACKET.BINARY_EVENT || type === PACKET.BINARY_ACK) {
    const dash = str.indexOf('-', i);
    const n = dash < 0 ? NaN : Number(str.substring(i, dash));
    if (dash < 0 || !(n >= 0) || str.substring(i, dash) === '') throw new Error('illegal attachments');
    packet.attachments = n;
    i = dash + 1;
  }
  if (str.charAt(i) === '/') {
    const comma = str.indexOf(',', i);
    const end = comma < 0 ? str.length : comma;
    packet.nsp = str.substring(i, end);
    i = comma < 0 ? str.length : comma + 1;
  }
  let idStart = i;
  while (i < str.length && str.charCodeAt(i) >= 48 && str.charCodeAt(i) <= 57) i++;
  if (i > idStart) packet.id = Number(str.substring(idStart, i));
  if (i < str.length) {
    let data;
    try {
      data = JSON.parse(str.substring(i));
    } catch (e) {
      throw new Error('invalid socket.io payload');
    }
    if (!payloadValid(type, data)) throw new Error('invalid socket.io payload for packet type ' + type);
    packet.data = data;
  } else if (type === PACKET.EVENT || type === PACKET.ACK) {
    throw new Error('socket.io packet type ' + type + ' needs a payload');
  }
  return packet;
}

/** A socket.io packet inside an engine.io message frame. */
export function encodeFrame(packet) {
  return ENGINE.MESSAGE + encodePacket(packet);
}

/** Decodes a websocket frame all the way: `{ engine, packet? }` (packet only for `message`). */
export function decodeFrame(frame) {
  const engine = decodeEngine(frame);
  if (engine.type === 'message') return { engine: engine, packet: decodePacket(engine.data) };
  return { engine: engine };
}

export function connectFrame(nsp, auth) {
  return encodeFrame({ type: PACKET.CONNECT, nsp: nsp, data: auth === undefined ? undefined : auth });
}
export function disconnectFrame(nsp) {
  return encodeFrame({ type: PACKET.DISCONNECT, nsp: nsp });
}
export function eventFrame(nsp, event, payload, ackId) {
  const args = payload === undefined ? [event] : [event, payload];
  return encodeFrame({ type: PACKET.EVENT, nsp: nsp, id: ackId, data: args });
}
export function ackFrame(nsp, ackId, args) {
  return encodeFrame({ type: PACKET.ACK, nsp: nsp, id: ackId, data: args });
}

// ---------------------------------------------------------------------------------------------
// Per-room sequence tracking (catch-up bookkeeping)
// ---------------------------------------------------------------------------------------------

/**
 * Tracks, per room, which seqs this client holds:
 *  - `contig`: highest seq such that every seq <= it is held (from a snapshot/join base, acks of
 *    its own publishes, or received events). This is what to send as `lastSeq` on reconnect.
 *  - seqs received above `contig` (out-of-order or after a gap).
 *  - a bounded window of seqs *delivered as events*, to count duplicate deliveries.
 * observe() returns 'new' (not held before), 'old' (covered by a base, never delivered) or
 * 'duplicate' (this seq was already delivered as an event).
 */
export class SeqTracker {
  constructor(opts) {
    this.window = (opts && opts.window) || 4096;
    this.rooms = {};
  }

  room(roomId) {
    let r = this.rooms[roomId];
    if (!r) {
      r = { contig: null, above: {}, aboveCount: 0, highest: null, recent: {}, recentQ: [], duplicates: 0, delivered: 0 };
      this.rooms[roomId] = r;
    }
    return r;
  }

  _advance(r) {
    while (r.contig !== null && r.above[r.contig + 1]) {
      delete r.above[r.contig + 1];
      r.aboveCount--;
      r.contig++;
    }
  }

  /** Everything up to `seq` is held (join ack / snapshot seq). Never moves backwards. */
  base(roomId, seq) {
    const r = this.room(roomId);
    if (typeof seq !== 'number') return;
    if (r.contig === null || seq > r.contig) r.contig = seq;
    const keys = Object.keys(r.above);
    for (let i = 0; i < keys.length; i++) {
      if (Number(keys[i]) <= r.contig) {
        delete r.above[keys[i]];
        r.aboveCount--;
      }
    }
    if (r.highest === null || seq > r.highest) r.highest = seq;
    this._advance(r);
  }

  /** Records `seq` for `roomId`; `delivered` false for seqs learnt from an ack (own publish). */
  observe(roomId, seq, delivered) {
    const r = this.room(roomId);
    const isDelivery = delivered !== false;
    if (isDelivery) {
      if (r.recent[seq]) {
        r.duplicates++;
        return 'duplicate';
      }
      r.recent[seq] = true;
      r.recentQ.push(seq);
      if (r.recentQ.length > this.window) delete r.recent[r.recentQ.shift()];
      r.delivered++;
    }
    if (r.highest === null || seq > r.highest) r.highest = seq;
    if (r.contig !== null && seq <= r.contig) return 'old';
    if (r.above[seq]) return 'old';
    r.above[seq] = true;
    r.aboveCount++;
    this._advance(r);
    return 'new';
  }

  /** The seq to present as lastSeq: highest contiguous held seq (null if the room is unknown). */
  last(roomId) {
    const r = this.rooms[roomId];
    if (!r) return null;
    if (r.contig !== null) return r.contig;
    return null;
  }

  highest(roomId) {
    const r = this.rooms[roomId];
    return r ? r.highest : null;
  }

  /** Seqs in (contig, upTo] not held — gaps. Capped at `limit` (default 1000) entries. */
  missing(roomId, upTo, limit) {
    const r = this.rooms[roomId];
    const out = [];
    if (!r || r.contig === null) return out;
    const max = limit || 1000;
    for (let s = r.contig + 1; s <= upTo && out.length < max; s++) if (!r.above[s]) out.push(s);
    return out;
  }

  duplicates(roomId) {
    const r = this.rooms[roomId];
    return r ? r.duplicates : 0;
  }

  /** `{ [roomId]: lastSeq }` for the handshake auth of a reconnect. */
  lastSeqMap() {
    const out = {};
    const ids = Object.keys(this.rooms);
    for (let i = 0; i < ids.length; i++) {
      const l = this.last(ids[i]);
      if (l !== null) out[ids[i]] = l;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

let idCounter = 0;

/** An id matching Tether's ClientId / ClientMsgId patterns ([A-Za-z0-9_-]). `rand` defaults to Math.random. */
export function randomId(prefix, length, rand) {
  const r = rand || Math.random;
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let s = prefix || '';
  const n = length || 16;
  for (let i = 0; i < n; i++) s += alphabet.charAt(Math.floor(r() * alphabet.length));
  return s;
}

function makeError(code, message, extra) {
  const e = { code: code, message: message };
  if (extra) {
    const keys = Object.keys(extra);
    for (let i = 0; i < keys.length; i++) e[keys[i]] = extra[keys[i]];
  }
  return e;
}

/**
 * A minimal Socket.IO client for one namespace over one engine.io websocket.
 *
 *   const c = new SocketIOClient({ send, close, nsp: '/sync', ackTimeoutMs: 10000 });
 *   transport.onmessage = (f) => c.handleFrame(f); transport.onclose = (code) => c.handleTransportClose(code);
 *   every ~100 ms: c.tick()          (expires ack timeouts; k6 sockets have setInterval but no clearTimeout)
 *   c.connect(auth)                  sends `40/sync,{auth}` once the engine.io open packet arrived
 *   c.on('session', fn)  c.emit(ev, payload)  c.emitWithAck(ev, payload, (err, response) => …, timeoutMs)
 *   c.request(ev, payload, (err, data) => …)   unwraps Tether's { ok, data } / { ok:false, error } acks
 *
 * Reserved local events: open (engine handshake), connect ({sid}), connect_error ({message,data}),
 * disconnect (reason), ping, sequenced (name, payload, status), error (Error), * (name, ...args).
 * emits before `connect` are buffered and flushed on connect, like socket.io-client.
 */
export class SocketIOClient {
  constructor(opts) {
    const o = opts || {};
    this.nsp = o.nsp || DEFAULT_NSP;
    this._send = o.send;
    this._close = o.close;
    this.now =
      o.now ||
      function () {
        return Date.now();
      };
    this.ackTimeoutMs = o.ackTimeoutMs || 10000;
    this.seq = o.seq || new SeqTracker();
    this.msgIdPrefix = o.msgIdPrefix || randomId('m', 10) + '-';
    this.state = 'opening'; // opening -> open -> connecting -> connected -> closed | error
    this.engine = null;
    this.sid = null;
    this.auth = undefined;
    this.closeReason = null;
    this._wantConnect = false;
    this._handlers = {};
    this._acks = {};
    this._pendingAcks = 0;
    this._nextAckId = 0;
    this._outbox = [];
    this._msgCounter = 0;
    this.openedAt = null;
    this.connectedAt = null;
    this.stats = {
      framesIn: 0,
      framesOut: 0,
      pings: 0,
      events: 0,
      acks: 0,
      lateAcks: 0,
      ackTimeouts: 0,
      protocolErrors: 0,
      otherNamespace: 0,
      sequenced: 0,
      newSeq: 0,
      duplicates: 0,
    };
  }

  // --- listeners --------------------------------------------------------------------------------
  on(name, fn) {
    if (!this._handlers[name]) this._handlers[name] = [];
    this._handlers[name].push(fn);
    return this;
  }
  off(name, fn) {
    const list = this._handlers[name];
    if (!list) return this;
    if (!fn) delete this._handlers[name];
    else this._handlers[name] = list.filter(function (h) {
      return h !== fn && h._orig !== fn;
    });
    return this;
  }
  once(name, fn) {
    const self = this;
    const wrapped = function () {
      self.off(name, wrapped);
      return fn.apply(null, arguments);
    };
    wrapped._orig = fn;
    return this.on(name, wrapped);
  }
  _fire(name, args) {
    const list = this._handlers[name];
    if (!list || list.length === 0) return false;
    const copy = list.slice();
    for (let i = 0; i < copy.length; i++) {
      try {
        copy[i].apply(null, args);
      } catch (e) {
        if (name !== 'error' && this._handlers.error && this._handlers.error.length) this._fire('error', [e]);
        else throw e;
      }
    }
    return true;
  }

  // --- outgoing ---------------------------------------------------------------------------------
  _write(frame) {
    if (this.state === 'closed') return false;
    this.stats.framesOut++;
    this._send(frame);
    return true;
  }

  get connected() {
    return this.state === 'connected';
  }

  /** Requests the namespace connection with handshake `auth` (sent as soon as engine.io is open). */
  connect(auth) {
    this.auth = auth;
    this._wantConnect = true;
    if (this.state === 'open') this._sendConnect();
    return this;
  }
  _sendConnect() {
    this.state = 'connecting';
    this._write(connectFrame(this.nsp, this.auth === undefined ? undefined : this.auth));
  }

  /** Fire-and-forget event. Buffered until connected. */
  emit(event, payload) {
    const frame = eventFrame(this.nsp, event, payload);
    if (this.state === 'connected') this._write(frame);
    else this._outbox.push(frame);
    return this;
  }

  /**
   * Event with an ack request. `cb(err, response)`: err is `{ code: 'ACK_TIMEOUT' | 'DISCONNECTED' }`
   * when no ack came; response is the first ack argument. Returns the ack id.
   */
  emitWithAck(event, payload, cb, timeoutMs) {
    const id = this._nextAckId++;
    const now = this.now();
    this._acks[id] = { cb: cb, event: event, sentAt: now, deadline: now + (timeoutMs || this.ackTimeoutMs) };
    this._pendingAcks++;
    const frame = eventFrame(this.nsp, event, payload, id);
    if (this.state === 'connected') this._write(frame);
    else this._outbox.push(frame);
    return id;
  }

  /** emitWithAck + Tether's Ack<T> envelope: cb(err, data, rttMs); err is the server's ErrorBody or a local one. */
  request(event, payload, cb, timeoutMs) {
    const self = this;
    const sentAt = this.now();
    return this.emitWithAck(
      event,
      payload,
      function (err, res) {
        const rtt = self.now() - sentAt;
        if (err) return cb(err, undefined, rtt);
        if (isObject(res) && res.ok === true) return cb(null, res.data, rtt);
        if (isObject(res) && res.ok === false) return cb(res.error || makeError('UNKNOWN', 'error ack without error body'), undefined, rtt);
        return cb(null, res, rtt);
      },
      timeoutMs,
    );
  }

  /** Polite leave: socket.io DISCONNECT for the namespace, then close the websocket. */
  disconnect() {
    if (this.state === 'connected') this._write(disconnectFrame(this.nsp));
    this._shutdown('io client disconnect');
    if (this._close) this._close();
  }

  /** Simulated network loss: close the websocket without a socket.io DISCONNECT. */
  drop() {
    this._shutdown('transport close');
    if (this._close) this._close();
  }

  get pendingAcks() {
    return this._pendingAcks;
  }

  /** Expires ack timeouts; call periodically. Returns the number expired. */
  tick(now) {
    if (this._pendingAcks === 0) return 0;
    const t = now === undefined ? this.now() : now;
    const ids = Object.keys(this._acks);
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const a = this._acks[ids[i]];
      if (a && a.deadline <= t) {
        delete this._acks[ids[i]];
        this._pendingAcks--;
        this.stats.ackTimeouts++;
        n++;
        a.cb(makeError('ACK_TIMEOUT', 'no ack for ' + a.event + ' within ' + (a.deadline - a.sentAt) + ' ms', { event: a.event }));
      }
    }
    return n;
  }

  // --- incoming ---------------------------------------------------------------------------------
  /** Feeds one websocket frame (string) into the client. */
  handleFrame(frame) {
    this.stats.framesIn++;
    let pkt;
    try {
      pkt = decodeEngine(frame);
    } catch (e) {
      return this._protocolError(e);
    }
    switch (pkt.type) {
      case 'open':
        this.engine = pkt.data;
        this.openedAt = this.now();
        if (this.state === 'opening') this.state = 'open';
        this._fire('open', [pkt.data]);
        if (this._wantConnect && this.state === 'open') this._sendConnect();
        return;
      case 'ping':
        this.stats.pings++;
        this._write(PONG_FRAME);
        this._fire('ping', [pkt.data]);
        return;
      case 'close':
        this._shutdown('transport close');
        if (this._close) this._close();
        return;
      case 'message': {
        let p;
        try {
          p = decodePacket(pkt.data);
        } catch (e) {
          return this._protocolError(e);
        }
        return this._onPacket(p);
      }
      case 'binary':
        return this._protocolError(new Error('binary frames are not supported'));
      default:
        return; // pong, noop, upgrade
    }
  }

  _protocolError(e) {
    this.stats.protocolErrors++;
    this._fire('error', [e]);
  }

  _onPacket(p) {
    if (p.nsp !== this.nsp) {
      this.stats.otherNamespace++;
      return;
    }
    switch (p.type) {
      case PACKET.CONNECT: {
        this.sid = p.data && p.data.sid ? p.data.sid : null;
        this.state = 'connected';
        this.connectedAt = this.now();
        const out = this._outbox;
        this._outbox = [];
        for (let i = 0; i < out.length; i++) this._write(out[i]);
        this._fire('connect', [p.data || {}]);
        return;
      }
      case PACKET.CONNECT_ERROR: {
        this.state = 'error';
        const err = typeof p.data === 'string' ? { message: p.data } : p.data;
        this._failAcks('CONNECT_ERROR');
        this._fire('connect_error', [err]);
        return;
      }
      case PACKET.DISCONNECT:
        this._shutdown('io server disconnect', true);
        return;
      case PACKET.EVENT: {
        this.stats.events++;
        const name = p.data[0];
        const args = p.data.slice(1);
        if (p.id !== undefined) {
          const self = this;
          const ackId = p.id;
          let sent = false;
          args.push(function () {
            if (sent) return;
            sent = true;
            self._write(ackFrame(self.nsp, ackId, Array.prototype.slice.call(arguments)));
          });
        }
        const payload = args[0];
        if (SEQUENCED_EVENTS.indexOf(name) >= 0 && isObject(payload) && typeof payload.roomId === 'string' && typeof payload.seq === 'number') {
          const status = this.seq.observe(payload.roomId, payload.seq, true);
          this.stats.sequenced++;
          if (status === 'new') this.stats.newSeq++;
          else if (status === 'duplicate') this.stats.duplicates++;
          this._fire('sequenced', [name, payload, status]);
        } else if ((name === 'room:state_snapshot' || name === 'room:state') && isObject(payload) && isObject(payload.room) && typeof payload.seq === 'number') {
          this.seq.base(payload.room.id, payload.seq);
        }
        this._fire('*', [name].concat(args));
        this._fire(name, args);
        return;
      }
      case PACKET.ACK: {
        const a = this._acks[p.id];
        if (!a) {
          this.stats.lateAcks++;
          return;
        }
        delete this._acks[p.id];
        this._pendingAcks--;
        this.stats.acks++;
        a.cb(null, p.data[0], this.now() - a.sentAt);
        return;
      }
      default:
        this._protocolError(new Error('unsupported socket.io packet type ' + p.type));
    }
  }

  _failAcks(code) {
    const ids = Object.keys(this._acks);
    const acks = this._acks;
    this._acks = {};
    this._pendingAcks = 0;
    for (let i = 0; i < ids.length; i++) acks[ids[i]].cb(makeError(code, 'socket closed before the ack of ' + acks[ids[i]].event, { event: acks[ids[i]].event }));
  }

  _shutdown(reason, keepTransport) {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = keepTransport ? 'disconnected' : 'closed';
    this.closeReason = reason;
    this._outbox = [];
    this._failAcks('DISCONNECTED');
    if (wasConnected) this._fire('disconnect', [reason]);
  }

  /** The transport closed (k6 socket 'close' / ws 'close'). */
  handleTransportClose(code) {
    this._shutdown(this.state === 'closed' ? this.closeReason : 'transport close');
    this.state = 'closed';
    this._fire('close', [code]);
  }

  handleTransportError(message) {
    this._fire('transport_error', [message]);
  }

  // --- Tether helpers ---------------------------------------------------------------------------
  /** A fresh clientMsgId (per-client prefix + counter): unique per connection lifetime of the prefix. */
  nextMsgId() {
    this._msgCounter++;
    return this.msgIdPrefix + this._msgCounter;
  }

  /** room:join; on success bases the room's seq on the snapshot and remembers `roomId`. */
  join(payload, cb, timeoutMs) {
    const self = this;
    return this.request(
      'room:join',
      payload,
      function (err, data, rtt) {
        if (!err && data && data.room && typeof data.seq === 'number') {
          self.roomId = data.room.id;
          self.seq.base(data.room.id, data.seq);
        }
        cb(err, data, rtt);
      },
      timeoutMs,
    );
  }

  /** room:rejoin with lastSeq from the tracker (unless given). A snapshot rebases via room:state_snapshot. */
  rejoin(roomId, cb, lastSeq, timeoutMs) {
    const self = this;
    const last = lastSeq === undefined || lastSeq === null ? this.seq.last(roomId) : lastSeq;
    const payload = { roomId: roomId };
    if (last !== null && last !== undefined) payload.lastSeq = last;
    return this.request(
      'room:rejoin',
      payload,
      function (err, data, rtt) {
        if (!err && data) {
          self.roomId = roomId;
          if (data.recovered === false && typeof data.seq === 'number') self.seq.base(roomId, data.seq);
        }
        cb(err, data, rtt);
      },
      timeoutMs,
    );
  }

  /**
   * Pages room:catchup from the tracker's lastSeq until `more` is false (at most `maxPages`).
   * Every returned log entry is observed like a delivered event. cb(err, { pages, newEvents, seq, recovered }).
   */
  catchup(roomId, cb, maxPages, limit) {
    const self = this;
    const max = maxPages || 20;
    let pages = 0;
    let newEvents = 0;
    function page() {
      const from = self.seq.last(roomId);
      const payload = { roomId: roomId, fromSeq: from === null ? 0 : from };
      if (limit) payload.limit = limit;
      self.request('room:catchup', payload, function (err, data) {
        if (err) return cb(err, { pages: pages, newEvents: newEvents });
        pages++;
        const events = (data && data.events) || [];
        for (let i = 0; i < events.length; i++) {
          const e = events[i];
          if (e && typeof e.seq === 'number' && self.seq.observe(roomId, e.seq, true) === 'new') newEvents++;
        }
        if (data && data.recovered === false) return cb(null, { pages: pages, newEvents: newEvents, seq: data.seq, recovered: false });
        if (data && data.more && pages < max) return page();
        cb(null, { pages: pages, newEvents: newEvents, seq: data ? data.seq : null, recovered: true, more: !!(data && data.more) });
      });
    }
    page();
  }

  /** room:publish with a fresh clientMsgId; the acked seq counts as held. cb(err, {seq, duplicate}, rtt, clientMsgId). */
  publish(roomId, type, data, cb, clientMsgId, timeoutMs) {
    const self = this;
    const msgId = clientMsgId || this.nextMsgId();
    const payload = { type: type, data: data, clientMsgId: msgId };
    if (roomId) payload.roomId = roomId;
    return this.request(
      'room:publish',
      payload,
      function (err, res, rtt) {
        if (!err && res && typeof res.seq === 'number' && roomId) self.seq.observe(roomId, res.seq, false);
        if (cb) cb(err, res, rtt, msgId);
      },
      timeoutMs,
    );
  }
}

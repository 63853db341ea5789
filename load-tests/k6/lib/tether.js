/**
 * k6 glue for Tether: env knobs, JWT (k6/crypto HMAC), HTTP room creation (k6/http) and a
 * Socket.IO client over k6/ws. The protocol logic lives in the pure ./socketio.js and ./jwt.js;
 * this file only wires them to k6 APIs (under Node, load-tests/node/ maps k6/* to its shim).
 *
 * Common knobs (all scripts):
 *   TARGET       HTTP base URL of Tether or the nginx in front of it   (default http://127.0.0.1:3000)
 *   JWT          a ready HS256 token used for POST /v1/rooms (admin/creator)
 *   JWT_SECRET   …or the server's JWT_SECRET: tokens are signed here (sub, name, iat, exp)
 *   AUTH         guest (default: clients connect without a token and join with guestName) | jwt
 *                (every client gets a token with sub=k6-user-<vu>; needs JWT_SECRET)
 *   NSP          socket.io namespace (default /sync)
 *   SOCKET_PATH  engine.io path (default /socket.io/)
 *   ACK_TIMEOUT  ms to wait for any ack (default 10000)
 */
import ws from 'k6/ws';
import http from 'k6/http';
import crypto from 'k6/crypto';
import { SocketIOClient, SeqTracker, engineUrl, httpBase, randomId, DEFAULT_NSP } from './socketio.js';
import { signJwt } from './jwt.js';

export { SocketIOClient, SeqTracker, randomId };

export function env(name, def) {
  const v = __ENV[name];
  return v === undefined || v === '' ? def : v;
}
export function envInt(name, def) {
  const v = env(name, undefined);
  if (v === undefined) return def;
  const n = parseInt(v, 10);
  if (isNaN(n)) throw new Error('env ' + name + ' must be an integer, got ' + JSON.stringify(v));
  return n;
}
export function envFloat(name, def) {
  const v = env(name, undefined);
  if (v === undefined) return def;
  const n = parseFloat(v);
  if (isNaN(n)) throw new Error('env ' + name + ' must be a number, got ' + JSON.stringify(v));
  return n;
}
export function envBool(name, def) {
  const v = env(name, undefined);
  if (v === undefined) return def;
  return v === '1' || v === 'true' || v === 'yes';
}

/** '500ms' | '30s' | '2m' | '1h' | plain number (ms) -> milliseconds. */
export function parseDurationMs(v) {
  if (typeof v === 'number') return v;
  const s = String(v).trim();
  let total = 0;
  let matched = '';
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    const n = parseFloat(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60000 : n * 3600000;
    matched += m[0];
  }
  if (matched === s && s !== '') return total;
  if (/^\d+(\.\d+)?$/.test(s)) return parseFloat(s);
  throw new Error('bad duration: ' + JSON.stringify(v));
}
export function envDurationMs(name, def) {
  return parseDurationMs(env(name, def));
}

export function target() {
  return httpBase(env('TARGET', 'http://127.0.0.1:3000'));
}
export function socketUrl() {
  return engineUrl(target(), env('SOCKET_PATH', undefined));
}

// --- JWT --------------------------------------------------------------------------------------

function hmacSha256B64Url(secret, data) {
  return crypto.hmac('sha256', secret, data, 'base64rawurl');
}

/** Signs `claims` with JWT_SECRET (HS256). */
export function signToken(claims, ttlSeconds) {
  const secret = env('JWT_SECRET', undefined);
  if (!secret) throw new Error('JWT_SECRET is not set: pass -e JWT_SECRET=… (or -e JWT=<token> for room creation)');
  return signJwt(claims, secret, hmacSha256B64Url, { ttlSeconds: ttlSeconds === undefined ? 6 * 3600 : ttlSeconds });
}

/** Token for POST /v1/rooms: -e JWT as given, else signed with JWT_SECRET. */
export function adminToken() {
  const given = env('JWT', undefined);
  if (given) return given;
  return signToken({ sub: 'k6-loadtest', name: 'k6 load test' });
}

/** Handshake token for a VU when AUTH=jwt, else null (guest). */
export function userToken(vu) {
  if (env('AUTH', 'guest') !== 'jwt') return null;
  return signToken({ sub: 'k6-user-' + vu, name: 'k6 user ' + vu });
}

// --- HTTP -------------------------------------------------------------------------------------

/** POST /v1/rooms -> { ok, status, room: { id, code, … } | null, error }. */
export function createRoom(token, body) {
  const res = http.post(target() + '/v1/rooms', JSON.stringify(body || {}), {
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    tags: { name: 'POST /v1/rooms' },
  });
  let parsed = null;
  try {
    parsed = JSON.parse(res.body);
  } catch (e) {
    parsed = null;
  }
  // The contract says `{ id, code, … }`; tolerate an `{ ok, data }` or `{ room }` envelope.
  let room = null;
  if (parsed && typeof parsed.id === 'string') room = parsed;
  else if (parsed && parsed.data && typeof parsed.data.id === 'string') room = parsed.data;
  else if (parsed && parsed.room && typeof parsed.room.id === 'string') room = parsed.room;
  const ok = res.status >= 200 && res.status < 300 && room !== null;
  return { ok: ok, status: res.status, room: room, error: ok ? null : (parsed && parsed.error) || res.error || res.body };
}

/** Creates `n` rooms (setup()); throws on the first failure so the run aborts with a clear message. */
export function createRooms(n, opts) {
  const o = opts || {};
  const token = o.token || adminToken();
  const rooms = [];
  for (let i = 0; i < n; i++) {
    const body = { name: (o.namePrefix || 'k6 room ') + i };
    if (o.maxParticipants) body.maxParticipants = o.maxParticipants;
    const r = createRoom(token, body);
    if (!r.ok) throw new Error('POST /v1/rooms failed: HTTP ' + r.status + ' ' + JSON.stringify(r.error));
    if (!r.room.code) throw new Error('POST /v1/rooms returned no code: ' + JSON.stringify(r.room));
    rooms.push({ id: r.room.id, code: r.room.code });
  }
  return rooms;
}

// --- socket -----------------------------------------------------------------------------------

/** A clientId matching Tether's ClientId pattern, unique per VU. */
export function newClientId(vu) {
  return randomId('k6-' + vu + '-', 20);
}

/**
 * Opens one websocket and runs a SocketIOClient on it; blocks (like ws.connect) until the socket
 * closes. `fn(client, socket)` runs inside the socket loop; `client.connect(auth)` is already
 * requested. opts: { auth, seq (SeqTracker to carry over reconnects), ackTimeoutMs, maxSessionMs
 * (hard cap, default 10 min), tags, headers, onClose(code) }.
 * Returns { client, response, error } — error set when the websocket could not be opened.
 */
export function connect(opts, fn) {
  const o = opts || {};
  let client = null;
  let response = null;
  let error = null;
  const params = { tags: o.tags || {} };
  if (o.headers) params.headers = o.headers;
  try {
    response = ws.connect(socketUrl(), params, function (socket) {
      client = new SocketIOClient({
        nsp: env('NSP', DEFAULT_NSP),
        ackTimeoutMs: o.ackTimeoutMs || envInt('ACK_TIMEOUT', 10000),
        seq: o.seq,
        send: function (frame) {
          socket.send(frame);
        },
        close: function () {
          socket.close();
        },
      });
      client.socket = socket;
      client.setTimeout = function (f, ms) {
        socket.setTimeout(f, timerMs(ms));
      };
      client.setInterval = function (f, ms) {
        socket.setInterval(f, timerMs(ms));
      };
      socket.on('message', function (data) {
        client.handleFrame(data);
      });
      socket.on('error', function (e) {
        const msg = e && typeof e.error === 'function' ? e.error() : String(e);
        error = error || msg;
        client.handleTransportError(msg);
      });
      socket.on('close', function (code) {
        client.handleTransportClose(code);
        if (o.onClose) o.onClose(code);
      });
      socket.setInterval(function () {
        client.tick();
      }, 100);
      socket.setTimeout(function () {
        if (client.state !== 'closed') client.drop();
      }, timerMs(o.maxSessionMs || 600000));
      client.connect(o.auth || {});
      fn(client, socket);
    });
  } catch (e) {
    error = String(e && e.message ? e.message : e);
  }
  if (!error && response && response.status !== 101) error = 'websocket handshake status ' + response.status;
  return { client: client, response: response, error: error };
}

/** Milliseconds to wait from now until the wall-clock instant `at` (>= 0). */
export function msUntil(at) {
  return Math.max(0, at - Date.now());
}

/**
 * A delay k6's socket.setTimeout / socket.setInterval accept: at least 1 ms. k6 throws on a delay
 * <= 0 ("setTimeout requires a >0 timeout parameter, received 0.00"), and msUntil() reaches 0 when
 * a VU starts late or the machine is busy — the thrown error then ends that VU's socket. Every
 * socket timer in these scripts goes through this (test/unit/k6-shim.test.ts checks it).
 */
export function timerMs(ms) {
  const n = Number(ms);
  return n >= 1 ? n : 1;
}

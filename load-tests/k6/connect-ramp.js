/**
 * Connection ramp: ramps to VUS concurrent Socket.IO connections, each joined to one of ROOMS
 * rooms, holds, and ramps down. Every iteration is one connection: connect -> `session` ->
 * room:join -> stay SESSION (answering engine.io pings, optional sync:ping) -> leave.
 *
 *   k6 run -e TARGET=http://127.0.0.1:3000 -e JWT_SECRET=<secret> -e VUS=2000 -e RAMP=2m load-tests/k6/connect-ramp.js
 *
 * Knobs (-e NAME=value):
 *   TARGET, JWT | JWT_SECRET, AUTH (guest|jwt)   see lib/tether.js
 *   VUS         peak concurrent connections                     default 500
 *   ROOMS       rooms created in setup, joined round-robin        default 10
 *   RAMP        ramp-up time                                      default 1m
 *   HOLD        time at VUS                                       default 2m
 *   RAMP_DOWN   ramp-down time                                    default 30s
 *   SESSION     how long one connection stays                     default 30s
 *   SYNC_EVERY  sync:ping interval inside a session (0 = off)     default 10s
 *   LEAVE       1: room:leave + socket.io disconnect at the end; 0: just drop the socket   default 1
 * Threshold knobs:
 *   CONNECT_P95_MS  p95 websocket start -> `session`              default 1000
 *   JOIN_P95_MS     p95 room:join ack                             default 500
 *
 * Custom metrics:
 *   tether_connect_ok (rate)                 namespace connect acked and `session` received
 *   tether_connect_duration (trend, ms)      websocket start -> socket.io connect ack (40/sync,{sid})
 *   tether_session_duration (trend, ms)      websocket start -> `session` event
 *   tether_join_ok (rate), tether_join_duration (trend, ms)
 *   tether_sync_rtt (trend, ms)              sync:ping ack round trip
 *   tether_engine_pings (counter)            engine.io pings answered
 *   tether_unexpected_disconnects (counter)  server-side closes before the session ended (must be 0)
 *   tether_connect_errors (counter, tags stage, code)
 */
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { connect, createRooms, envBool, envDurationMs, envInt, newClientId, timerMs, userToken } from './lib/tether.js';

const VUS = envInt('VUS', 500);
const ROOMS = Math.max(1, envInt('ROOMS', 10));
const SESSION = envDurationMs('SESSION', '30s');
const SYNC_EVERY = envDurationMs('SYNC_EVERY', '10s');
const LEAVE = envBool('LEAVE', true);

export const options = {
  setupTimeout: '120s',
  scenarios: {
    ramp: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: __ENV.RAMP || '1m', target: VUS },
        { duration: __ENV.HOLD || '2m', target: VUS },
        { duration: __ENV.RAMP_DOWN || '30s', target: 0 },
      ],
      gracefulRampDown: Math.ceil(SESSION / 1000 + 15) + 's',
      gracefulStop: Math.ceil(SESSION / 1000 + 15) + 's',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    tether_connect_ok: ['rate>0.99'],
    tether_join_ok: ['rate>0.99'],
    tether_session_duration: ['p(95)<' + envInt('CONNECT_P95_MS', 1000)],
    tether_join_duration: ['p(95)<' + envInt('JOIN_P95_MS', 500)],
    tether_unexpected_disconnects: ['count==0'],
  },
};

const connectOk = new Rate('tether_connect_ok');
const connectDuration = new Trend('tether_connect_duration', true);
const sessionDuration = new Trend('tether_session_duration', true);
const joinOk = new Rate('tether_join_ok');
const joinDuration = new Trend('tether_join_duration', true);
const syncRtt = new Trend('tether_sync_rtt', true);
const enginePings = new Counter('tether_engine_pings');
const unexpected = new Counter('tether_unexpected_disconnects');
const errors = new Counter('tether_connect_errors');

export function setup() {
  return { rooms: createRooms(ROOMS, { namePrefix: 'ramp ', maxParticipants: Math.ceil(VUS / ROOMS) + 10 }) };
}

export default function (data) {
  const room = data.rooms[(__VU - 1) % data.rooms.length];
  const auth = { clientId: newClientId(__VU) };
  const token = userToken(__VU);
  if (token) auth.token = token;
  const t0 = Date.now();
  let gotSession = false;
  let joined = false;
  let ending = false;

  const r = connect({ auth: auth, maxSessionMs: SESSION + 30000 }, function (c, socket) {
    c.on('connect', function () {
      connectDuration.add(Date.now() - t0);
    });
    c.on('connect_error', function (e) {
      errors.add(1, { stage: 'connect', code: String((e && e.data && e.data.code) || 'connect_error') });
      c.drop();
    });
    c.on('disconnect', function (reason) {
      if (!ending) {
        unexpected.add(1, { reason: String(reason) });
      }
    });
    c.on('session', function () {
      gotSession = true;
      sessionDuration.add(Date.now() - t0);
      c.join({ roomCode: room.code, guestName: 'k6 ' + __VU }, function (err, d, rtt) {
        joinOk.add(!err);
        if (err) {
          errors.add(1, { stage: 'join', code: String(err.code || 'error') });
          return;
        }
        joined = true;
        joinDuration.add(rtt);
        check(d, {
          'join: snapshot has a seq': function (x) { return typeof x.seq === 'number'; },
          'join: self is online': function (x) { return !!x.self && x.self.status === 'online'; },
        });
      });
    });
    if (SYNC_EVERY > 0) {
      socket.setInterval(function () {
        if (!c.connected) return;
        c.request('sync:ping', { clientTimestamp: Date.now() }, function (err, d, rtt) {
          if (!err) syncRtt.add(rtt);
        });
      }, timerMs(SYNC_EVERY));
    }
    socket.setTimeout(function () {
      ending = true;
      enginePings.add(c.stats.pings);
      if (!LEAVE || !joined) return c.drop();
      c.request('room:leave', { roomId: room.id }, function () {
        c.disconnect();
      }, 5000);
    }, timerMs(SESSION));
  });
  unexpected.add(0);
  connectOk.add(gotSession && !r.error);
  if (r.error) errors.add(1, { stage: 'ws', code: 'ws' });
}

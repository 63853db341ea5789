/**
 * Reconnection storm: VUS clients in ROOMS rooms all lose their connection at the same instant
 * and come back with clientId + sessionToken + lastSeq, as after a worker restart or a deploy.
 *
 *   k6 run -e TARGET=http://127.0.0.1:3000 -e JWT_SECRET=<secret> -e VUS=500 -e ROOMS=10 load-tests/k6/reconnect-storm.js
 *
 * Knobs (-e NAME=value):
 *   TARGET        http(s)://host:port of Tether / nginx                   default http://127.0.0.1:3000
 *   JWT | JWT_SECRET  token for POST /v1/rooms, or the secret to sign one  (one is required)
 *   AUTH          guest | jwt  (how clients authenticate the socket)      default guest
 *   VUS           clients, one per VU                                     default 200
 *   ROOMS         rooms, clients spread round-robin                       default 10
 *   ANCHORS       clients per room that stay connected and publish GAP_EVENTS during the outage
 *                 (they also count the presence broadcasts the storm causes)  default 1
 *   GAP_EVENTS    events each anchor publishes while the others are away  default 5
 *   WARMUP        from setup to the drop: all clients connect and join    default 10s
 *   SPREAD        initial connects are spread over this (<= WARMUP/2)     default WARMUP/2
 *   DOWNTIME      how long clients stay away                              default 1s
 *   JITTER        extra random delay per client before reconnecting (0 = everyone at once)  default 0
 *   OBSERVE       after the rejoin ack, keep counting presence messages   default 7s (2 x 3 s flush + slack)
 *   AUTH_LASTSEQ  1: also send { lastSeq: { [roomId]: seq } } in the handshake auth   default 1
 * Threshold knobs:
 *   REJOIN_P95_MS    p95 reconnect start -> rejoin ack                     default 3000
 *   RECOVERED_MIN    minimum ratio of rejoins with recovered=true          default 0.99
 *   PRESENCE_P95_MAX p95 of room:presence messages one client receives    default 3
 *
 * Custom metrics:
 *   tether_storm_rejoin_duration (trend, ms)   reconnect start -> room:rejoin ack
 *   tether_storm_session_duration (trend, ms)  reconnect start -> `session` event
 *   tether_storm_rejoin_ok (rate)              rejoin acked ok
 *   tether_storm_recovered (rate)              rejoin acked with recovered=true (missed events replayed, not a snapshot)
 *   tether_storm_session_resumed (rate)        same clientId and a higher epoch after the reconnect
 *   tether_storm_presence_msgs (trend)         room:presence messages per reconnecting client (connect .. ack+OBSERVE)
 *   tether_storm_anchor_presence_msgs (trend)  room:presence messages per anchor during the storm (~ broadcasts per room)
 *   tether_storm_missed_recovered (trend)      per client: missed events received before the rejoin ack
 *   tether_storm_missed_recovered_total (counter)
 *   tether_storm_replayed (trend)              `replayed` from the rejoin ack
 *   tether_storm_events_missing (counter)      seqs up to the room's seq never received by the end (must be 0)
 *   tether_storm_duplicates (counter)          sequenced events delivered twice (client drops them)
 *   tether_storm_errors (counter, tags stage, code)
 */
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { connect, createRooms, env, envBool, envDurationMs, envFloat, envInt, msUntil, newClientId, SeqTracker, timerMs, userToken } from './lib/tether.js';

const VUS = envInt('VUS', 200);
const ROOMS = Math.max(1, Math.min(envInt('ROOMS', 10), VUS));
const ANCHORS = envInt('ANCHORS', 1);
const GAP_EVENTS = envInt('GAP_EVENTS', 5);
const WARMUP = envDurationMs('WARMUP', '10s');
const SPREAD = Math.min(envDurationMs('SPREAD', String(Math.floor(WARMUP / 2))), WARMUP);
const DOWNTIME = envDurationMs('DOWNTIME', '1s');
const JITTER = envDurationMs('JITTER', '0');
const OBSERVE = envDurationMs('OBSERVE', '7s');
const AUTH_LASTSEQ = envBool('AUTH_LASTSEQ', true);
const TOTAL_MS = WARMUP + DOWNTIME + JITTER + OBSERVE;

export const options = {
  setupTimeout: '120s',
  scenarios: {
    storm: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1,
      maxDuration: Math.ceil((TOTAL_MS + 60000) / 1000) + 's',
      gracefulStop: '10s',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    tether_storm_rejoin_ok: ['rate>' + envFloat('RECOVERED_MIN', 0.99)],
    tether_storm_recovered: ['rate>=' + envFloat('RECOVERED_MIN', 0.99)],
    tether_storm_session_resumed: ['rate>0.99'],
    tether_storm_rejoin_duration: ['p(95)<' + envInt('REJOIN_P95_MS', 3000)],
    tether_storm_presence_msgs: ['p(95)<=' + envInt('PRESENCE_P95_MAX', 3)],
    tether_storm_events_missing: ['count==0'],
  },
};

const rejoinDuration = new Trend('tether_storm_rejoin_duration', true);
const sessionDuration = new Trend('tether_storm_session_duration', true);
const rejoinOk = new Rate('tether_storm_rejoin_ok');
const recovered = new Rate('tether_storm_recovered');
const sessionResumed = new Rate('tether_storm_session_resumed');
const presenceMsgs = new Trend('tether_storm_presence_msgs');
const anchorPresenceMsgs = new Trend('tether_storm_anchor_presence_msgs');
const missedRecovered = new Trend('tether_storm_missed_recovered');
const missedRecoveredTotal = new Counter('tether_storm_missed_recovered_total');
const replayed = new Trend('tether_storm_replayed');
const eventsMissing = new Counter('tether_storm_events_missing');
const duplicates = new Counter('tether_storm_duplicates');
const errors = new Counter('tether_storm_errors');

export function setup() {
  const rooms = createRooms(ROOMS, { namePrefix: 'storm ', maxParticipants: Math.ceil(VUS / ROOMS) + 10 });
  return { rooms: rooms, dropAt: Date.now() + WARMUP };
}

function fail(stage, code) {
  errors.add(1, { stage: stage, code: String(code || 'unknown') });
}

function errCode(err) {
  return err && err.code ? err.code : 'error';
}

export default function (data) {
  const idx = __VU - 1;
  const room = data.rooms[idx % data.rooms.length];
  const anchor = Math.floor(idx / data.rooms.length) < ANCHORS;
  const clientId = newClientId(__VU);
  const token = userToken(__VU);
  const seq = new SeqTracker();

  // Phase 1: connect, get a session, join, and (non-anchors) drop at `dropAt`.
  const spreadMs = Math.min(SPREAD * Math.random(), Math.max(0, msUntil(data.dropAt) - 1000));
  if (spreadMs > 0) sleep(spreadMs / 1000);

  let session = null;
  let joined = false;
  const auth1 = { clientId: clientId };
  if (token) auth1.token = token;
  const endOfTest = data.dropAt + DOWNTIME + JITTER + OBSERVE + 2000;
  const first = connect({ auth: auth1, seq: seq, maxSessionMs: anchor ? msUntil(endOfTest) + 5000 : msUntil(data.dropAt) + 5000 }, function (c, socket) {
    let presence = 0;
    c.on('connect_error', function (e) {
      fail('connect', (e && e.data && e.data.code) || 'connect_error');
      c.drop();
    });
    c.on('session', function (s) {
      session = s;
      c.join({ roomCode: room.code, guestName: 'k6 ' + __VU }, function (err) {
        if (err) {
          fail('join', errCode(err));
          return;
        }
        joined = true;
      });
    });
    if (!anchor) {
      socket.setTimeout(function () {
        c.drop();
      }, timerMs(msUntil(data.dropAt)));
      return;
    }
    // Anchor: publish into the outage, count the presence broadcasts the storm produces.
    c.on('room:presence', function (p) {
      if (p.roomId === room.id && Date.now() >= data.dropAt) presence++;
    });
    for (let i = 1; i <= GAP_EVENTS; i++) {
      socket.setTimeout(function () {
        if (!joined) return;
        c.publish(room.id, 'k6.storm.gap', { n: i, t: Date.now() }, function (err) {
          if (err) fail('gap_publish', errCode(err));
        });
      }, timerMs(msUntil(data.dropAt + Math.floor((DOWNTIME * i) / (GAP_EVENTS + 1)))));
    }
    socket.setTimeout(function () {
      anchorPresenceMsgs.add(presence);
      const missing = seq.missing(room.id, seq.highest(room.id) || 0);
      eventsMissing.add(missing.length, { role: 'anchor' });
      c.disconnect();
    }, timerMs(msUntil(endOfTest)));
  });
  if (first.error) fail('connect', 'ws');
  check(joined, { 'joined before the drop': function (j) { return j === true; } });
  if (anchor || !joined || !session) return;
  check(session, { 'session token issued': function (s) { return typeof s.sessionToken === 'string'; } });
  if (!session.sessionToken) {
    fail('session', 'no_token');
    return;
  }

  // Phase 2: everybody comes back at once (plus JITTER).
  const backAt = data.dropAt + DOWNTIME + Math.floor(JITTER * Math.random());
  const wait = msUntil(backAt);
  if (wait > 0) sleep(wait / 1000);

  const lastSeq = seq.last(room.id);
  const auth2 = { clientId: clientId, sessionToken: session.sessionToken };
  if (token) auth2.token = token;
  if (AUTH_LASTSEQ && lastSeq !== null) {
    auth2.lastSeq = {};
    auth2.lastSeq[room.id] = lastSeq;
  }
  const t0 = Date.now();
  let acked = false;
  const second = connect({ auth: auth2, seq: seq, maxSessionMs: OBSERVE + 30000 }, function (c, socket) {
    let presence = 0;
    let missed = 0;
    c.on('connect_error', function (e) {
      fail('reconnect', (e && e.data && e.data.code) || 'connect_error');
      c.drop();
    });
    c.on('sequenced', function (name, p, status) {
      if (p.roomId === room.id && status === 'new' && !acked) missed++;
    });
    c.on('room:presence', function (p) {
      if (p.roomId === room.id) presence++;
    });
    c.on('session', function (s) {
      sessionDuration.add(Date.now() - t0);
      sessionResumed.add(s.clientId === clientId && typeof s.epoch === 'number' && s.epoch > session.epoch);
      c.rejoin(room.id, function (err, res) {
        acked = true;
        rejoinOk.add(!err);
        if (err) {
          fail('rejoin', errCode(err));
          c.drop();
          return;
        }
        rejoinDuration.add(Date.now() - t0);
        recovered.add(res.recovered === true);
        replayed.add(typeof res.replayed === 'number' ? res.replayed : 0);
        missedRecovered.add(missed);
        missedRecoveredTotal.add(missed);
        const finish = function (upTo) {
          socket.setTimeout(function () {
            presenceMsgs.add(presence);
            const missing = seq.missing(room.id, Math.max(upTo, seq.highest(room.id) || 0));
            eventsMissing.add(missing.length, { role: 'client' });
            duplicates.add(seq.duplicates(room.id));
            c.disconnect();
          }, timerMs(OBSERVE));
        };
        if (res.more) {
          c.catchup(room.id, function (cerr, r) {
            if (cerr) fail('catchup', errCode(cerr));
            else missedRecoveredTotal.add(r.newEvents);
            finish(res.seq);
          });
        } else finish(res.seq);
      }, lastSeq);
    });
  });
  if (!acked) {
    // No ack at all: the websocket failed, the namespace connect was refused, or it closed first.
    rejoinOk.add(false);
    fail('rejoin', second.error ? 'ws' : 'no_ack');
  }
}

/**
 * Soak: VUS clients stay in ROOMS rooms for DURATION with a steady, realistic mix — occasional
 * publishes, clock-sync pings, and a dropped connection every SESSION per client that must
 * resume (same clientId + sessionToken, room:rejoin with lastSeq) without losing an event.
 * Watch the server's memory, event-loop lag and Redis key counts on the dashboard meanwhile.
 *
 *   k6 run -e TARGET=http://127.0.0.1:3000 -e JWT_SECRET=<secret> -e VUS=300 -e DURATION=2h load-tests/k6/soak.js
 *
 * Knobs (-e NAME=value):
 *   TARGET, JWT | JWT_SECRET, AUTH (guest|jwt)   see lib/tether.js
 *   VUS            clients                                        default 100
 *   ROOMS          rooms                                          default 10
 *   DURATION       total run time                                 default 30m
 *   SESSION        connection lifetime before a simulated network drop   default 5m
 *   PAUSE          offline time between a drop and the reconnect  default 1s (keep < server GRACE_PERIOD_MS)
 *   PUBLISH_EVERY  mean time between one client's publishes (0 = never)  default 20s
 *   SYNC_EVERY     sync:ping interval (0 = off)                   default 15s
 * Threshold knobs:
 *   LATENCY_P95_MS  p95 room:event end-to-end latency             default 300
 *
 * Custom metrics:
 *   tether_soak_event_latency (trend, ms)  publisher timestamp -> room:event at the other members
 *   tether_soak_publish_ok (rate)          room:publish acked ok
 *   tether_soak_join_ok (rate)             first room:join acked ok
 *   tether_soak_rejoin_ok (rate)           room:rejoin after a drop acked ok
 *   tether_soak_recovered (rate)           …with recovered=true
 *   tether_soak_rejoin_duration (trend, ms) reconnect start -> rejoin ack
 *   tether_soak_events_missing (counter)   seqs never received by the end of a session (must be 0)
 *   tether_soak_duplicates (counter)       sequenced events delivered twice
 *   tether_soak_unexpected_disconnects (counter) server-side closes (must be 0)
 *   tether_sync_rtt (trend, ms)            sync:ping round trip
 *   tether_soak_errors (counter, tags stage, code)
 */
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { connect, createRooms, envDurationMs, envInt, msUntil, newClientId, SeqTracker, timerMs, userToken } from './lib/tether.js';

const VUS = envInt('VUS', 100);
const ROOMS = Math.max(1, envInt('ROOMS', 10));
const DURATION = envDurationMs('DURATION', '30m');
const SESSION = envDurationMs('SESSION', '5m');
const PAUSE = envDurationMs('PAUSE', '1s');
const PUBLISH_EVERY = envDurationMs('PUBLISH_EVERY', '20s');
const SYNC_EVERY = envDurationMs('SYNC_EVERY', '15s');

export const options = {
  setupTimeout: '120s',
  scenarios: {
    soak: {
      executor: 'constant-vus',
      vus: VUS,
      duration: Math.ceil(DURATION / 1000) + 's',
      gracefulStop: '30s',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    tether_soak_event_latency: ['p(95)<' + envInt('LATENCY_P95_MS', 300)],
    tether_soak_publish_ok: ['rate>0.99'],
    tether_soak_join_ok: ['rate>0.99'],
    tether_soak_rejoin_ok: ['rate>0.99'],
    tether_soak_recovered: ['rate>0.99'],
    tether_soak_events_missing: ['count==0'],
    tether_soak_unexpected_disconnects: ['count==0'],
  },
};

const latency = new Trend('tether_soak_event_latency', true);
const publishOk = new Rate('tether_soak_publish_ok');
const joinOk = new Rate('tether_soak_join_ok');
const rejoinOk = new Rate('tether_soak_rejoin_ok');
const recovered = new Rate('tether_soak_recovered');
const rejoinDuration = new Trend('tether_soak_rejoin_duration', true);
const eventsMissing = new Counter('tether_soak_events_missing');
const duplicates = new Counter('tether_soak_duplicates');
const unexpected = new Counter('tether_soak_unexpected_disconnects');
const syncRtt = new Trend('tether_sync_rtt', true);
const errors = new Counter('tether_soak_errors');

export function setup() {
  const rooms = createRooms(ROOMS, { namePrefix: 'soak ', maxParticipants: Math.ceil(VUS / ROOMS) + 10 });
  return { rooms: rooms, endAt: Date.now() + DURATION };
}

// Per-VU state survives iterations (one iteration = one connection).
const state = { clientId: null, sessionToken: null, epoch: -1, seq: null, joined: false, dups: 0 };

export default function (data) {
  const room = data.rooms[(__VU - 1) % data.rooms.length];
  const left = msUntil(data.endAt);
  if (left < 3000) {
    // Too little time for another session: idle until the scenario ends (no busy loop).
    sleep(Math.max(left, 1000) / 1000);
    return;
  }
  if (!state.clientId) {
    state.clientId = newClientId(__VU);
    state.seq = new SeqTracker();
    state.dups = 0;
  } else if (__ITER > 0) {
    sleep(PAUSE / 1000);
  }
  // First session of each VU is shortened at random so drops spread out over time.
  const sessionMs = Math.min(state.joined ? SESSION : Math.floor(SESSION * (0.5 + Math.random() / 2)), msUntil(data.endAt));
  const resuming = state.joined && state.sessionToken;
  const auth = { clientId: state.clientId };
  const token = userToken(__VU);
  if (token) auth.token = token;
  if (resuming) {
    auth.sessionToken = state.sessionToken;
    const last = state.seq.last(room.id);
    if (last !== null) {
      auth.lastSeq = {};
      auth.lastSeq[room.id] = last;
    }
  }
  const t0 = Date.now();
  let ending = false;
  let inRoom = false;
  let rejoinRecorded = false;

  const r = connect({ auth: auth, seq: state.seq, maxSessionMs: sessionMs + 30000 }, function (c, socket) {
    c.on('connect_error', function (e) {
      errors.add(1, { stage: 'connect', code: String((e && e.data && e.data.code) || 'connect_error') });
      if (e && e.data && e.data.code === 'SESSION_INVALID') {
        state.sessionToken = null;
        state.joined = false;
        state.clientId = null;
      }
      c.drop();
    });
    c.on('disconnect', function (reason) {
      if (!ending) unexpected.add(1, { reason: String(reason) });
    });
    c.on('room:event', function (e) {
      // Events before the (re)join ack are replays of what was missed: not live latency.
      if (inRoom && e.roomId === room.id && e.type === 'k6.soak' && e.data && typeof e.data.t === 'number' && e.from !== state.clientId) latency.add(Date.now() - e.data.t);
    });
    c.on('session', function (s) {
      if (s.sessionToken) state.sessionToken = s.sessionToken;
      if (resuming) {
        check(s, { 'resumed the same clientId with a higher epoch': function (x) { return x.clientId === state.clientId && x.epoch > state.epoch; } });
      }
      state.epoch = s.epoch;
      if (!resuming) {
        c.join({ roomCode: room.code, guestName: 'soak ' + __VU }, function (err) {
          joinOk.add(!err);
          if (err) return errors.add(1, { stage: 'join', code: String(err.code || 'error') });
          state.joined = true;
          inRoom = true;
        });
        return;
      }
      c.rejoin(room.id, function (err, res) {
        rejoinOk.add(!err);
        rejoinRecorded = true;
        if (err) {
          errors.add(1, { stage: 'rejoin', code: String(err.code || 'error') });
          if (err.code === 'NOT_IN_ROOM' || err.code === 'ROOM_NOT_FOUND') state.joined = false;
          return;
        }
        inRoom = true;
        rejoinDuration.add(Date.now() - t0);
        recovered.add(res.recovered === true);
        if (res.more) c.catchup(room.id, function () {});
      });
    });
    if (PUBLISH_EVERY > 0) {
      const tickMs = 1000;
      socket.setInterval(function () {
        if (!inRoom || Math.random() >= tickMs / PUBLISH_EVERY) return;
        c.publish(room.id, 'k6.soak', { t: Date.now(), vu: __VU }, function (err) {
          if (err && ending && err.code === 'DISCONNECTED') return; // in flight when we dropped on purpose
          publishOk.add(!err);
          if (err) errors.add(1, { stage: 'publish', code: String(err.code || 'error') });
        });
      }, timerMs(tickMs));
    }
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
      if (inRoom) {
        eventsMissing.add(state.seq.missing(room.id, state.seq.highest(room.id) || 0).length);
        const dups = state.seq.duplicates(room.id);
        duplicates.add(dups - state.dups);
        state.dups = dups;
      }
      if (msUntil(data.endAt) < 3000) {
        // Last session: leave politely so the run ends clean.
        c.request('room:leave', { roomId: room.id }, function () { c.disconnect(); }, 5000);
      } else {
        c.drop(); // simulated network loss; the next iteration resumes
      }
    }, timerMs(sessionMs));
  });
  unexpected.add(0);
  eventsMissing.add(0);
  if (resuming && !rejoinRecorded) {
    rejoinOk.add(false);
    errors.add(1, { stage: 'rejoin', code: r.error ? 'ws' : 'no_ack' });
  }
  if (r.error) errors.add(1, { stage: 'ws', code: 'ws' });
}

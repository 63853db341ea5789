/**
 * Broadcast fan-out: in each of ROOMS rooms, PUBLISHERS clients publish room:publish at RATE
 * messages/s for DURATION while LISTENERS clients receive the room:event broadcasts. End-to-end
 * latency = receive time - the publisher's Date.now() carried in the payload (same load generator
 * clock; with several k6 machines keep their clocks NTP-synced).
 *
 *   k6 run -e TARGET=http://127.0.0.1:3000 -e JWT_SECRET=<secret> -e ROOMS=10 -e LISTENERS=50 load-tests/k6/broadcast-fanout.js
 *
 * Knobs (-e NAME=value):
 *   TARGET, JWT | JWT_SECRET, AUTH (guest|jwt)   see lib/tether.js
 *   ROOMS          rooms                                         default 5
 *   LISTENERS      listening clients per room                    default 20
 *   PUBLISHERS     publishing clients per room                   default 1
 *   RATE           messages per second per publisher (keep under the server's PUBLISH_RATE_PER_SEC)  default 2
 *   DURATION       publishing time                               default 1m
 *   WARMUP         setup -> first publish (everyone joins)        default 5s
 *   DRAIN          after the last publish, keep listening         default 3s
 *   PAYLOAD_BYTES  padding in each message's data                default 64
 *   VUS = ROOMS x (LISTENERS + PUBLISHERS), one client per VU.
 * Threshold knobs:
 *   FANOUT_P95_MS  p95 end-to-end latency                        default 250
 *   FANOUT_P99_MS  p99 end-to-end latency                        default 1000
 *
 * Custom metrics:
 *   tether_fanout_latency (trend, ms)        publish timestamp -> room:event received, per listener
 *   tether_publish_ack_duration (trend, ms)  room:publish ack round trip
 *   tether_publish_ok (rate)                 room:publish acked ok (RATE_LIMITED etc. count as failures)
 *   tether_fanout_received (counter)         room:event deliveries to listeners
 *   tether_published (counter)               messages acked to publishers
 *   tether_fanout_missing (counter)          per listener: seqs never received by the end (must be 0)
 *   tether_fanout_duplicates (counter)       sequenced events delivered twice
 *   tether_fanout_errors (counter, tags stage, code)
 */
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { connect, createRooms, envDurationMs, envFloat, envInt, msUntil, newClientId, timerMs, userToken } from './lib/tether.js';

const ROOMS = Math.max(1, envInt('ROOMS', 5));
const LISTENERS = envInt('LISTENERS', 20);
const PUBLISHERS = Math.max(1, envInt('PUBLISHERS', 1));
const RATE = envFloat('RATE', 2);
const DURATION = envDurationMs('DURATION', '1m');
const WARMUP = envDurationMs('WARMUP', '5s');
const DRAIN = envDurationMs('DRAIN', '3s');
const PAYLOAD_BYTES = envInt('PAYLOAD_BYTES', 64);
const VUS = ROOMS * (LISTENERS + PUBLISHERS);
const PER_ROOM = LISTENERS + PUBLISHERS;

export const options = {
  setupTimeout: '120s',
  scenarios: {
    fanout: {
      executor: 'per-vu-iterations',
      vus: VUS,
      iterations: 1,
      maxDuration: Math.ceil((WARMUP + DURATION + DRAIN + 60000) / 1000) + 's',
      gracefulStop: '10s',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    tether_fanout_latency: ['p(95)<' + envInt('FANOUT_P95_MS', 250), 'p(99)<' + envInt('FANOUT_P99_MS', 1000)],
    tether_publish_ok: ['rate>0.99'],
    tether_fanout_missing: ['count==0'],
  },
};

const latency = new Trend('tether_fanout_latency', true);
const ackDuration = new Trend('tether_publish_ack_duration', true);
const publishOk = new Rate('tether_publish_ok');
const received = new Counter('tether_fanout_received');
const published = new Counter('tether_published');
const missingEvents = new Counter('tether_fanout_missing');
const duplicates = new Counter('tether_fanout_duplicates');
const errors = new Counter('tether_fanout_errors');

export function setup() {
  const rooms = createRooms(ROOMS, { namePrefix: 'fanout ', maxParticipants: PER_ROOM + 10 });
  const startAt = Date.now() + WARMUP;
  return { rooms: rooms, startAt: startAt, endAt: startAt + DURATION };
}

function pad(n) {
  let s = '';
  while (s.length < n) s += 'x';
  return s;
}

export default function (data) {
  const idx = __VU - 1;
  const room = data.rooms[idx % data.rooms.length];
  const publisher = Math.floor(idx / data.rooms.length) < PUBLISHERS;
  const clientId = newClientId(__VU);
  const auth = { clientId: clientId };
  const token = userToken(__VU);
  if (token) auth.token = token;
  const padding = pad(PAYLOAD_BYTES);
  let joined = false;

  const r = connect({ auth: auth, maxSessionMs: msUntil(data.endAt) + DRAIN + 30000 }, function (c, socket) {
    c.on('connect_error', function (e) {
      errors.add(1, { stage: 'connect', code: String((e && e.data && e.data.code) || 'connect_error') });
      c.drop();
    });
    c.on('session', function () {
      c.join({ roomCode: room.code, guestName: (publisher ? 'pub ' : 'sub ') + __VU }, function (err) {
        if (err) {
          errors.add(1, { stage: 'join', code: String(err.code || 'error') });
          return;
        }
        joined = true;
      });
    });
    if (!publisher) {
      c.on('room:event', function (e) {
        if (e.roomId !== room.id || e.type !== 'k6.fanout' || !e.data || typeof e.data.t !== 'number') return;
        latency.add(Date.now() - e.data.t);
        received.add(1);
      });
    } else {
      let n = 0;
      const interval = Math.max(1, Math.floor(1000 / RATE));
      // Stagger publishers inside one interval so rooms do not publish in lockstep.
      socket.setTimeout(function () {
        socket.setInterval(function () {
          if (Date.now() >= data.endAt || !joined) return;
          n++;
          c.publish(room.id, 'k6.fanout', { t: Date.now(), n: n, pub: __VU, pad: padding }, function (err, res, rtt) {
            publishOk.add(!err);
            if (err) {
              errors.add(1, { stage: 'publish', code: String(err.code || 'error') });
              return;
            }
            ackDuration.add(rtt);
            published.add(1);
          });
        }, timerMs(interval));
      }, timerMs(msUntil(data.startAt) + Math.floor(Math.random() * interval)));
    }
    socket.setTimeout(function () {
      // Gaps: every seq up to the highest one seen must have arrived (or been acked to us).
      const missing = c.seq.missing(room.id, c.seq.highest(room.id) || 0);
      missingEvents.add(missing.length);
      duplicates.add(c.seq.duplicates(room.id));
      c.disconnect();
    }, timerMs(msUntil(data.endAt) + DRAIN));
  });
  if (r.error) errors.add(1, { stage: 'ws', code: 'ws' });
  check(joined, { 'joined the room': function (j) { return j === true; } });
}

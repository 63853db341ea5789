/**
 * Smoke: a functional walk through the wire contract with two clients, in ~10 s. Run it before a
 * big test (and CI runs it under Node through load-tests/node/, see test/integration/k6-scripts.test.ts).
 *
 *   k6 run -e TARGET=http://127.0.0.1:3000 -e JWT_SECRET=<secret> load-tests/k6/smoke.js
 *
 * VU 1 ("anchor") and VU 2 ("roamer") each: connect -> `session` (clientId, sessionToken, epoch)
 * -> room:join by code -> room:publish (seq > join seq) -> same clientMsgId again (duplicate, same
 * seq) -> receive the other's room:event with a seq -> answer engine.io pings while holding.
 * Then the roamer drops, the anchor publishes while it is away, and the roamer reconnects with
 * clientId + sessionToken + lastSeq and room:rejoin: the missed event must be replayed before the
 * ack, recovered=true.
 *
 * Knobs: TARGET, JWT | JWT_SECRET, AUTH (lib/tether.js); VUS (1 or 2, default 2); WARMUP (2s);
 *        HOLD (3s: connection held after publishing; set the server's WS_PING_INTERVAL below it to
 *        see pings); MIN_PINGS (engine.io pings each client must have answered, default 0).
 */
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { adminToken, connect, createRoom, envDurationMs, envInt, msUntil, newClientId, SeqTracker, timerMs, userToken } from './lib/tether.js';

const VUS = Math.min(2, Math.max(1, envInt('VUS', 2)));
const WARMUP = envDurationMs('WARMUP', '2s');
const HOLD = envDurationMs('HOLD', '3s');
const MIN_PINGS = envInt('MIN_PINGS', 0);

export const options = {
  scenarios: { smoke: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '60s' } },
  thresholds: {
    checks: ['rate==1'],
    tether_smoke_broadcasts: VUS > 1 ? ['count>=1'] : ['count>=0'],
    tether_smoke_replayed: VUS > 1 ? ['count>=1'] : ['count>=0'],
  },
};

const broadcasts = new Counter('tether_smoke_broadcasts');
const replayedEvents = new Counter('tether_smoke_replayed');
const pings = new Counter('tether_smoke_pings');

export function setup() {
  const r = createRoom(adminToken(), { name: 'k6 smoke' });
  check(r, {
    'POST /v1/rooms -> 2xx': function (x) { return x.status >= 200 && x.status < 300; },
    'room has id and an 8-char code': function (x) { return !!x.room && typeof x.room.id === 'string' && /^[23456789A-HJKMNP-Z]{8}$/.test(String(x.room.code)); },
  });
  if (!r.ok) throw new Error('room creation failed: HTTP ' + r.status + ' ' + JSON.stringify(r.error));
  const startAt = Date.now() + WARMUP;
  return { room: { id: r.room.id, code: r.room.code }, startAt: startAt, dropAt: startAt + HOLD };
}

export default function (data) {
  const room = data.room;
  const anchor = __VU === 1;
  const clientId = newClientId(__VU);
  const seq = new SeqTracker();
  const token = userToken(__VU);
  const auth = { clientId: clientId };
  if (token) auth.token = token;
  let session = null;
  let joinSeq = null;
  const endAt = anchor ? data.dropAt + 3000 : data.dropAt;

  const first = connect({ auth: auth, seq: seq, maxSessionMs: msUntil(endAt) + 10000 }, function (c, socket) {
    c.on('connect', function (d) {
      check(d, { 'connect ack carries a sid': function (x) { return typeof x.sid === 'string' && x.sid.length > 0; } });
    });
    c.on('connect_error', function (e) {
      check(e, { 'no connect_error': function () { return false; } });
      c.drop();
    });
    c.on('room:event', function (e) {
      if (e.type !== 'k6.smoke' || !e.data || e.data.vu === __VU) return;
      broadcasts.add(1);
      check(e, {
        'broadcast room:event has roomId, seq, from, ts': function (x) {
          return x.roomId === room.id && typeof x.seq === 'number' && x.seq > 0 && typeof x.from === 'string' && typeof x.ts === 'number';
        },
      });
    });
    c.on('session', function (s) {
      session = s;
      check(s, {
        'session: our clientId': function (x) { return x.clientId === clientId; },
        'session: sessionToken issued': function (x) { return typeof x.sessionToken === 'string' && x.sessionToken.length >= 20; },
        'session: epoch is a number': function (x) { return typeof x.epoch === 'number'; },
      });
      c.join({ roomCode: room.code, guestName: 'smoke ' + __VU }, function (err, d) {
        check(err, { 'room:join ok': function (x) { return !x; } });
        if (err) return;
        joinSeq = d.seq;
        check(d, {
          'join: room id matches': function (x) { return x.room && x.room.id === room.id; },
          'join: seq and serverTimestamp': function (x) { return typeof x.seq === 'number' && typeof x.serverTimestamp === 'number'; },
          'join: self is us': function (x) { return !!x.self && x.self.clientId === clientId; },
          'join: participants include us': function (x) {
            return Array.isArray(x.participants) && x.participants.some(function (p) { return p.clientId === clientId; });
          },
        });
      });
    });
    socket.setTimeout(function () {
      c.publish(room.id, 'k6.smoke', { vu: __VU, t: Date.now() }, function (err, res, rtt, msgId) {
        check(err, { 'room:publish ok': function (x) { return !x; } });
        if (err) return;
        check(res, { 'publish ack: seq above the join seq': function (x) { return typeof x.seq === 'number' && joinSeq !== null && x.seq > joinSeq && x.duplicate === false; } });
        // Same clientMsgId again: deduplicated, same seq.
        c.publish(room.id, 'k6.smoke', { vu: __VU, t: Date.now() }, function (err2, res2) {
          check(res2, { 'publish resend: duplicate=true with the original seq': function (x) { return !err2 && !!x && x.duplicate === true && x.seq === res.seq; } });
        }, msgId);
      });
    }, timerMs(msUntil(data.startAt)));
    if (anchor) {
      // Publish while the roamer is away; it must get this on rejoin.
      socket.setTimeout(function () {
        c.publish(room.id, 'k6.smoke.gap', { vu: __VU }, function (err) {
          check(err, { 'gap publish ok': function (x) { return !x; } });
        });
      }, timerMs(msUntil(data.dropAt + 500)));
    }
    socket.setTimeout(function () {
      pings.add(c.stats.pings);
      check(c, {
        'still connected after the hold': function (x) { return x.connected; },
        'answered the minimum engine.io pings': function (x) { return x.stats.pings >= MIN_PINGS; },
        'no protocol errors': function (x) { return x.stats.protocolErrors === 0; },
      });
      if (anchor) c.disconnect();
      else c.drop();
    }, timerMs(msUntil(endAt)));
  });
  check(first, { 'websocket opened': function (x) { return !x.error; } });
  if (anchor || !session || !session.sessionToken) return;

  // Roamer: come back after the anchor's gap publish.
  sleep(msUntil(data.dropAt + 1000) / 1000);
  const lastSeq = seq.last(room.id);
  const auth2 = { clientId: clientId, sessionToken: session.sessionToken, lastSeq: {} };
  auth2.lastSeq[room.id] = lastSeq;
  if (token) auth2.token = token;
  let acked = false;
  let gapBeforeAck = false;
  connect({ auth: auth2, seq: seq, maxSessionMs: 15000 }, function (c, socket) {
    c.on('room:event', function (e) {
      if (e.type === 'k6.smoke.gap' && !acked) gapBeforeAck = true;
    });
    c.on('sequenced', function (name, p, status) {
      if (p.roomId === room.id && status === 'new' && !acked) replayedEvents.add(1);
    });
    c.on('session', function (s) {
      check(s, { 'reconnect: same clientId, higher epoch': function (x) { return x.clientId === clientId && x.epoch > session.epoch; } });
      c.rejoin(room.id, function (err, res) {
        acked = true;
        check(err, { 'room:rejoin ok': function (x) { return !x; } });
        if (err) return c.drop();
        check(res, {
          'rejoin: recovered': function (x) { return x.recovered === true; },
          'rejoin: seq covers lastSeq': function (x) { return typeof x.seq === 'number' && x.seq > lastSeq; },
        });
        check(gapBeforeAck, { 'rejoin: missed event replayed before the ack': function (x) { return x === true; } });
        socket.setTimeout(function () {
          check(seq, { 'rejoin: no seq gaps': function (t) { return t.missing(room.id, Math.max(res.seq, t.highest(room.id) || 0)).length === 0; } });
          c.disconnect();
        }, 500);
      }, lastSeq);
    });
  });
  check(acked, { 'rejoin acked': function (x) { return x === true; } });
}

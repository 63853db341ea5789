// Per-target protocol adapters: the only place where the targets differ for the generator.
//   tether:  session {clientId, sessionToken}; reconnect presents them, then room:rejoin {roomId,
//            lastSeq} → replay before the ack (room:catchup pages when `more`), or a snapshot.
//   plain, careful: reconnect = a fresh connection + room:join again (what the room hears about it
//            is the server's business: at once for plain, batched for careful). The client is
//            never told what it missed.
//   csr:     reconnect carries Socket.IO's pid/offset; if socket.recovered the server restored
//            rooms and sent missed packets, else the client joins again (and knows it lost state).

import { DEFAULT_HOLE_WAIT_MAX_MS, DEFAULT_HOLE_WAIT_MS, HoleWait, LATE_COPY_WINDOW_MS } from '../../packages/client/dist/hole-wait.js';

function waitSession(socket, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      // Where the attempt stood. "transport opening, tcp connected" is a connection waiting in the
      // server's accept queue (its request sent, nothing read back); "tcp connecting", a SYN unanswered.
      let stage = socket.connected ? 'namespace connected' : socket.io.engine?.readyState === 'open' ? 'transport open' : 'transport opening';
      const tcp = socket.io.engine?.transport?.ws?._req?.socket; // ws internals: diagnostics only
      if (stage === 'transport opening' && tcp) stage += tcp.connecting ? ', tcp connecting' : `, tcp connected, ${tcp.bytesRead} bytes read`;
      reject(new Error(`no session within 10s (${stage})`));
    }, timeoutMs);
    const onSession = (s) => {
      cleanup();
      resolve(s);
    };
    const onError = (e) => {
      cleanup();
      reject(new Error(`connect_error: ${e?.message ?? e}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('session', onSession);
      socket.off('connect_error', onError);
    };
    socket.on('session', onSession);
    socket.on('connect_error', onError);
    socket.connect();
  });
}

async function ack(socket, event, payload, timeoutMs = 15_000) {
  const res = await socket.timeout(timeoutMs).emitWithAck(event, payload);
  if (!res?.ok) {
    const e = new Error(`${event}: ${res?.error?.code ?? 'no ack'} ${res?.error?.message ?? ''}`);
    e.code = res?.error?.code;
    throw e;
  }
  return res.data;
}

const guestName = (c) => `bench-${c.gi}`;
const PRESENCE_EVENTS = new Set(['room:participant:joined', 'room:participant:left', 'room:presence']);

/** The server said "you lost state": which path said it first (reported per run, so a told client can be traced). */
function told(c, why, snapshot = true) {
  if (snapshot) c.snapshot = true;
  c.told = true;
  c.toldWhy ??= why;
}

function trackSeq(c, seq, live = false) {
  const st = c.state;
  if (seq > (st.maxSeq ?? 0)) st.maxSeq = seq;
  if (seq <= st.seqContig || st.seqAbove.has(seq)) {
    // A live copy of what the last catch-up fetched: the broadcast was that late (the SDK learns it).
    const f = c.fetched;
    if (live && f && seq > f.fromSeq && seq <= f.toSeq && Date.now() <= f.until) c.holeWait.observe(Date.now() - f.since);
    return;
  }
  if (seq === st.seqContig + 1) {
    st.seqContig++;
    while (st.seqAbove.delete(st.seqContig + 1)) st.seqContig++;
  } else st.seqAbove.add(seq);
}

/** Sets the contiguous seq to `seq` (join ack, snapshot), keeping later seqs already received. */
function resetSeq(c, seq) {
  const st = c.state;
  st.seqContig = Math.max(seq, 0);
  for (const x of st.seqAbove) if (x <= st.seqContig) st.seqAbove.delete(x);
  while (st.seqAbove.delete(st.seqContig + 1)) st.seqContig++;
}

// What the SDK does about a hole in a room's seqs while connected (packages/client/src/room-sync.ts,
// with its own HoleWait): wait for a late broadcast — at least holeWaitMs (default 300), learned
// from how late broadcasts arrive — then fetch what is missing with room:catchup. Events that
// arrive this way are counted (gapFilled): each one is a broadcast that was lost or later than the
// wait (then its broadcast shows up as a duplicate).

function armHole(c, s) {
  if (c.holeTimer || c.filling || c.replaying || c.socket !== s) return;
  c.holeWait ??= new HoleWait(DEFAULT_HOLE_WAIT_MS, DEFAULT_HOLE_WAIT_MAX_MS, Date.now, Math.random);
  c.holeSince ||= Date.now();
  c.holeTimer = setTimeout(() => {
    c.holeTimer = null;
    fillGap(c, s).catch(() => undefined);
  }, c.holeWait.next());
}

/** The hole closed: if a late broadcast filled it while its timer waited, that lateness teaches the wait. */
function holeClosed(c) {
  if (c.holeTimer && c.holeSince && !c.filling) {
    c.holeWait.observe(Date.now() - c.holeSince);
    clearTimeout(c.holeTimer);
    c.holeTimer = null;
  }
  c.holeSince = 0;
}

async function fillGap(c, s) {
  const st = c.state;
  if (c.filling || c.replaying || c.socket !== s || st.seqAbove.size === 0) return;
  c.filling = true;
  try {
    for (let page = 0; page < 20 && st.seqAbove.size > 0 && c.socket === s; page++) {
      const from = st.seqContig;
      const r = await ack(s, 'room:catchup', { roomId: c.roomId, fromSeq: from, limit: 500 });
      if (r.events.length) c.fetched = { fromSeq: from, toSeq: r.events[r.events.length - 1].seq, since: c.holeSince || Date.now(), until: Date.now() + LATE_COPY_WINDOW_MS };
      for (const ev of r.events) {
        if (ev.name === 'room:event') c.onEvent(ev.payload);
        else if (PRESENCE_EVENTS.has(ev.name)) c.countReplayedPresence();
        trackSeq(c, ev.seq);
      }
      if (!r.recovered) {
        told(c, 'gap fill: room:catchup not recovered');
        resetSeq(c, Math.max(...st.seqAbove));
        break;
      }
      if (st.seqContig === from) break;
    }
  } finally {
    c.filling = false;
    if (st.seqAbove.size === 0) c.holeSince = 0;
  }
}

const tether = {
  install(c, s) {
    c.state.seqContig ??= 0;
    c.state.seqAbove ??= new Set();
    s.onAny((name, p) => {
      if (p && typeof p.seq === 'number' && p.roomId === c.roomId && name !== 'room:state' && name !== 'room:rejoined') {
        trackSeq(c, p.seq, true);
        if (c.state.seqAbove.size > 0) armHole(c, s);
        else holeClosed(c);
      }
    });
    s.on('room:state_snapshot', (p) => {
      if (p?.room?.id && p.room.id !== c.roomId) return;
      told(c, `room:state_snapshot (lastSeq ${c.state.seqContig}, room seq ${p.seq})`);
      resetSeq(c, p.seq);
    });
  },
  async connect(c, s) {
    s.auth = c.state.clientId ? { clientId: c.state.clientId, sessionToken: c.state.sessionToken } : {};
    const session = await waitSession(s);
    c.state.clientId = session.clientId;
    if (session.sessionToken) c.state.sessionToken = session.sessionToken;
    c.state.features = Array.isArray(session.features) ? session.features : [];
    return session;
  },
  async join(c, s) {
    // As the SDK does on a server that offers it: the state comes in the ack only.
    const data = await ack(s, 'room:join', { roomCode: c.roomId, guestName: guestName(c), ...(c.state.features?.includes('join.stateEvent') ? { stateEvent: false } : {}) });
    resetSeq(c, data.seq);
  },
  async rejoin(c, s) {
    let res;
    c.seqLagAtRejoin = (c.state.maxSeq ?? 0) - c.state.seqContig;
    try {
      res = await ack(s, 'room:rejoin', { roomId: c.roomId, lastSeq: c.state.seqContig });
    } catch (e) {
      if (e.code !== 'NOT_IN_ROOM') throw e;
      // Evicted meanwhile (grace period over): join again, which announces the member.
      told(c, 'room:rejoin NOT_IN_ROOM (evicted)');
      await tether.join(c, s);
      return;
    }
    c.recovered = res.recovered;
    if (!res.recovered) told(c, `room:rejoin recovered: false (lastSeq ${c.state.seqContig}, room seq ${res.seq})`, false);
    let more = res.more;
    for (let page = 0; more && page < 100; page++) {
      const r = await ack(s, 'room:catchup', { roomId: c.roomId, fromSeq: c.state.seqContig, limit: 500 });
      for (const ev of r.events) {
        if (ev.name === 'room:event') c.onEvent(ev.payload);
        else if (PRESENCE_EVENTS.has(ev.name)) c.countReplayedPresence();
        trackSeq(c, ev.seq);
      }
      more = r.more && r.events.length > 0;
      if (!r.recovered) told(c, 'rejoin paging: room:catchup not recovered');
    }
  },
};

const plain = {
  install() {},
  async connect(c, s) {
    s.auth = c.state.clientId ? { clientId: c.state.clientId } : {};
    const session = await waitSession(s);
    c.state.clientId = session.clientId;
    return session;
  },
  async join(c, s) {
    await ack(s, 'room:join', { roomCode: c.roomId, guestName: guestName(c) });
  },
  async rejoin(c, s) {
    c.recovered = false;
    await plain.join(c, s);
  },
};

const csr = {
  install() {},
  async connect(c, s, isReconnect, old) {
    s.auth = c.state.clientId ? { clientId: c.state.clientId } : {};
    if (isReconnect && old?._pid) {
      // What socket.io-client does on its own reconnects, carried over to a new Manager/URL.
      s._pid = old._pid;
      s._lastOffset = old._lastOffset;
    }
    const session = await waitSession(s);
    c.state.clientId = session.clientId;
    return session;
  },
  async join(c, s) {
    await ack(s, 'room:join', { roomCode: c.roomId, guestName: guestName(c) });
  },
  async rejoin(c, s) {
    c.recovered = Boolean(s.recovered);
    if (c.recovered) return;
    told(c, 'Socket.IO recovery failed', false);
    await csr.join(c, s);
  },
};

export function makeAdapter(target) {
  const a = { tether, plain, careful: plain, csr }[target];
  if (!a) throw new Error(`unknown target ${target}`);
  return a;
}

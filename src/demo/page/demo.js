// Tether's demo room page: plain JavaScript on the SDK's standalone bundle (@tether/client/standalone,
// served as /assets/tether-client.min.js). No build step. Everything a user types reaches the DOM
// through textContent only.

// ---- "Simulate network loss" -------------------------------------------------------------------
// Installed before the SDK loads, so its WebSocket constructor is this one. While the network is
// "cut", open sockets are closed (the server sees a transport close: the member goes away, not
// left) and every new one fails the way an unreachable server does: nothing leaves the browser.
const NativeWebSocket = globalThis.WebSocket;
const liveSockets = new Set();
const net = {
  cut: false,
  setCut(cut) {
    net.cut = cut;
    if (cut) for (const ws of liveSockets) ws.close(4000, 'network cut (demo)');
  },
};

class UnreachableSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.binaryType = 'blob';
    this.protocol = '';
    this.extensions = '';
    this.bufferedAmount = 0;
    this.onopen = this.onclose = this.onerror = this.onmessage = null;
    this.closedByApp = false;
    setTimeout(() => {
      if (this.readyState === 3) return;
      this.readyState = 3;
      const onclose = this.onclose;
      this.onerror?.(new Event('error'));
      if (!this.closedByApp) onclose?.(new CloseEvent('close', { code: 1006, reason: 'network cut (demo)', wasClean: false }));
    }, 150);
  }
  send() {
    throw new DOMException('the network is cut', 'InvalidStateError');
  }
  close() {
    this.closedByApp = true;
    this.readyState = 3;
  }
  addEventListener() {}
  removeEventListener() {}
}

function GatedWebSocket(url, protocols) {
  if (net.cut) return new UnreachableSocket(url);
  const ws = protocols === undefined ? new NativeWebSocket(url) : new NativeWebSocket(url, protocols);
  liveSockets.add(ws);
  ws.addEventListener('close', () => liveSockets.delete(ws));
  return ws;
}
Object.assign(GatedWebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
GatedWebSocket.prototype = NativeWebSocket.prototype;
globalThis.WebSocket = GatedWebSocket;

const { TetherClient, driftMs, msUntilEffective, randomId } = await import('./tether-client.min.js');

// ---- constants and elements ----------------------------------------------------------------------
const TRACK = 'demo-track';
const TRACK_MS = 180_000;
const HISTORY_LIMIT = 50;
const MAX_ITEMS = 500;
const $ = (id) => document.getElementById(id);
const el = {
  conn: $('conn'), connText: $('conn-text'),
  lobby: $('lobby'), joinForm: $('join-form'), name: $('name'), code: $('code'), joinBtn: $('join-btn'), createBtn: $('create-btn'), lobbyError: $('lobby-error'),
  room: $('room'), roomCode: $('room-code'), share: $('share-link'), meName: $('me-name'), roomStatus: $('room-status'),
  netToggle: $('net-toggle'), leaveBtn: $('leave-btn'),
  messages: $('messages'), historyNote: $('history-note'), chatForm: $('chat-form'), chatInput: $('chat-input'),
  members: $('members'), memberCount: $('member-count'),
  seek: $('seek'), pos: $('pos'), playState: $('play-state'), playBtn: $('play-btn'), pauseBtn: $('pause-btn'), controlHint: $('control-hint'),
  offset: $('offset'), rtt: $('rtt'), drift: $('drift'),
};

// sessionStorage: one identity per tab that survives a reload (the seat is kept); the room and
// name are remembered the same way, so a reload goes straight back in.
const tabStore = window.sessionStorage;
const client = new TetherClient({
  url: location.origin,
  storage: 'session',
  // Short backoff: after "network loss" ends the tab is back within a couple of seconds.
  reconnect: { baseMs: 300, maxMs: 2000 },
});
let room = null;

// For diagnostics in the console (and the browser test): the client and the current room.
window.tetherDemo = { client, get room() { return room; }, net };

// ---- connection indicator -----------------------------------------------------------------------
function showStatus(s) {
  el.conn.dataset.state = s.state;
  const next = s.delayMs > 0 ? `, next try in ${(s.delayMs / 1000).toFixed(1)} s` : '';
  const cut = net.cut ? ' (network cut)' : '';
  let text;
  switch (s.state) {
    case 'connected': text = `Online · worker ${s.nodeId}`; break;
    case 'connecting': text = `Connecting… attempt ${s.attempt}${next}${cut}`; break;
    case 'reconnecting': text = `Reconnecting… attempt ${s.attempt}${next}${cut}`; break;
    case 'offline':
      text = s.reason === 'idle' ? 'Not connected'
        : s.reason === 'replaced' ? 'Offline: this seat was taken over by another tab'
        : s.reason === 'closed' ? 'Offline' : `Offline (${s.reason})`;
      break;
    default: text = s.state;
  }
  el.connText.textContent = text;
}
client.on('status', showStatus);
showStatus(client.status);
client.on('clock', renderClock);

// ---- lobby ----------------------------------------------------------------------------------------
const params = new URLSearchParams(location.search);
el.name.value = tabStore.getItem('demo:name') ?? localStorage.getItem('demo:name') ?? '';
el.code.value = (params.get('room') ?? '').toUpperCase();

function lobbyError(text) {
  el.lobbyError.textContent = text;
}
function busy(on) {
  el.joinBtn.disabled = on;
  el.createBtn.disabled = on;
}
// The buttons come disabled in the HTML: until this script has loaded the SDK and filled the lobby
// in, a click would submit the form natively (a page reload) and lose what was typed.
busy(false);
function nameOrComplain() {
  const name = el.name.value.trim();
  if (!name) {
    lobbyError('Enter your name first.');
    el.name.focus();
    return null;
  }
  return name;
}

el.joinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  lobbyError('');
  const name = nameOrComplain();
  if (!name) return;
  const code = el.code.value.trim().toUpperCase();
  if (!/^[A-Z0-9]{8}$/.test(code)) {
    lobbyError('A room code is 8 letters and digits.');
    el.code.focus();
    return;
  }
  await enter(code, name);
});

el.createBtn.addEventListener('click', async () => {
  lobbyError('');
  const name = nameOrComplain();
  if (!name) return;
  busy(true);
  try {
    const res = await fetch('/v1/demo/rooms', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `${name}'s room`.slice(0, 64) }),
    });
    const body = await res.json().catch(() => ({}));
    if (res.status === 404) {
      lobbyError('Creating rooms from this page is turned off on this server (DEMO_ROOMS). Join a room by its code instead.');
      return;
    }
    if (!res.ok) {
      lobbyError(res.status === 429 ? 'Too many rooms created from here: wait a minute.' : `Could not create a room: ${body.error?.message ?? res.status}`);
      return;
    }
    await enter(body.code, name);
  } catch (err) {
    lobbyError(`Could not reach the server: ${err.message}`);
  } finally {
    busy(false);
  }
});

const JOIN_ERRORS = {
  ROOM_NOT_FOUND: 'No room with this code (rooms expire when nobody uses them for a day).',
  ROOM_FULL: 'This room is full.',
  INVALID_PASSWORD: 'This room has a password: the demo page joins open rooms only.',
  ALREADY_IN_ROOM: 'This tab is in another room: leave it first.',
  UNAUTHORIZED: 'This server does not let guests in (ALLOW_GUESTS=false).',
  RATE_LIMITED: 'Too many attempts: wait a moment.',
};

async function enter(code, name) {
  busy(true);
  try {
    const joined = await client.join(code, { guestName: name });
    tabStore.setItem('demo:room', joined.id);
    tabStore.setItem('demo:name', name);
    localStorage.setItem('demo:name', name);
    history.replaceState(null, '', `?room=${encodeURIComponent(joined.id)}`);
    attach(joined, name);
  } catch (err) {
    tabStore.removeItem('demo:room');
    lobbyError(JOIN_ERRORS[err.code] ?? `Could not join: ${err.message}`);
  } finally {
    busy(false);
  }
}

// ---- the room -------------------------------------------------------------------------------------
const bySeq = new Map();
const pendingByMid = new Map();
/** Names of everyone seen in this room, so "X left" still has a name once X is gone. */
const names = new Map();

function attach(r, name) {
  room = r;
  el.lobby.hidden = true;
  el.room.hidden = false;
  el.roomCode.textContent = r.id;
  const link = `${location.origin}/?room=${r.id}`;
  el.share.href = link;
  el.share.textContent = link;
  el.meName.textContent = name;
  el.messages.replaceChildren();
  bySeq.clear();
  pendingByMid.clear();
  names.clear();

  // Attached in one task: delivery starts with the join's state, then every event after it.
  r.on('state', () => {
    renderMembers();
    followPlayback(r.playback);
  });
  r.on('event', (e) => {
    if (e.type === 'chat') showChat(e.seq, e.from, e.data, e.ts);
  });
  r.on('participant:joined', (e) => {
    names.set(e.participant.clientId, e.participant.name);
    showSystem(e.seq, `${e.participant.name} joined`);
  });
  r.on('participant:left', (e) => showSystem(e.seq, `${nameOf(e.clientId)} ${e.reason === 'left' ? 'left' : e.reason === 'kicked' ? 'was removed' : 'left (timed out)'}`));
  r.on('presence', (e) => {
    const parts = [...e.away.map((id) => `${nameOf(id)} is away`), ...e.returned.map((id) => `${nameOf(id)} is back`)];
    if (parts.length) showSystem(e.seq, parts.join(' · '));
  });
  r.on('sequenced', () => renderMembers());
  r.on('playback', (ev) => followPlayback(ev));
  r.on('playback:control', () => renderMembers());
  r.on('playback:sync', (sync) => {
    lastSync = { drift: driftMs(playerPosition(), sync, client.serverNow()), at: performance.now() };
    // A player far off the room's timeline jumps back onto it; a small drift is just shown.
    if (Math.abs(lastSync.drift) > 250) followPlayback(r.playback);
  });
  r.on('publish', (msg) => showOutgoing(msg));
  r.on('status', (s) => showRoomStatus(s));
  r.on('resumed', ({ recovered }) => {
    // A snapshot replaced the state: the events in between were not replayed. The log may still
    // hold them (a long cut, within its retention): read them back.
    if (!recovered) void loadHistory();
  });
  r.on('closed', ({ reason, error }) => {
    if (room !== r) return;
    detach();
    if (reason === 'error') lobbyError(JOIN_ERRORS[error?.code] ?? `The room closed: ${error?.message ?? reason}`);
  });
  showRoomStatus(r.status);
  renderMembers();
  void loadHistory();
  el.chatInput.focus();
}

function detach() {
  room = null;
  tabStore.removeItem('demo:room');
  history.replaceState(null, '', location.pathname);
  el.room.hidden = true;
  el.lobby.hidden = false;
  player.playing = false;
  lastSync = null;
}

el.leaveBtn.addEventListener('click', async () => {
  const r = room;
  if (!r) return;
  detach();
  try {
    await r.leave();
  } catch (err) {
    lobbyError(`Leaving failed: ${err.message}`);
  }
});

el.netToggle.addEventListener('click', () => {
  net.setCut(!net.cut);
  // The label stays; aria-pressed (and its style) says whether the cut is on.
  el.netToggle.setAttribute('aria-pressed', String(net.cut));
  showStatus(client.status);
});

function showRoomStatus(s) {
  el.roomStatus.textContent = s;
  el.roomStatus.dataset.status = s;
}

function nameOf(clientId) {
  return room?.participant(clientId)?.name ?? names.get(clientId) ?? `guest ${String(clientId).slice(0, 4)}`;
}

// ---- chat -----------------------------------------------------------------------------------------
/** Items with a seq are in seq order; pending messages (no seq yet) stay at the end. */
function place(li, seq) {
  if (bySeq.has(seq)) return false;
  bySeq.set(seq, li);
  li.dataset.seq = String(seq);
  let before = null;
  for (const child of el.messages.children) {
    if (child.dataset.seq === undefined || Number(child.dataset.seq) > seq) {
      before = child;
      break;
    }
  }
  el.messages.insertBefore(li, before);
  while (el.messages.children.length > MAX_ITEMS) {
    const first = el.messages.firstElementChild;
    bySeq.delete(Number(first.dataset.seq));
    first.remove();
  }
  if (!before) el.messages.scrollTop = el.messages.scrollHeight;
  return true;
}

function messageItem(name, text, mine) {
  const li = document.createElement('li');
  li.className = mine ? 'msg mine' : 'msg';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = name;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  const meta = document.createElement('span');
  meta.className = 'meta';
  li.append(who, body, meta);
  return li;
}

function setMeta(li, seq, ts, status) {
  const meta = li.querySelector('.meta');
  meta.replaceChildren();
  const parts = [seq ? `#${seq}` : '', ts ? new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : ''].filter(Boolean);
  meta.append(parts.join(' · '));
  if (status) {
    const st = document.createElement('span');
    st.className = 'status';
    st.dataset.status = status.kind;
    st.textContent = `${parts.length ? ' · ' : ''}${status.text}`;
    meta.append(st);
  }
}

function statusOf(msg) {
  if (msg.status === 'sent') return { kind: 'sent', text: 'sent ✓' };
  if (msg.status === 'failed') return { kind: 'failed', text: `failed (${msg.error?.code ?? 'error'})` };
  return { kind: 'pending', text: client.connected ? 'sending…' : 'pending (offline)' };
}

function showChat(seq, from, data, ts) {
  const text = typeof data?.text === 'string' ? data.text : '';
  const mine = from === client.clientId;
  const waiting = mine && typeof data?.mid === 'string' ? pendingByMid.get(data.mid) : undefined;
  if (waiting) {
    // Our own message came back before (or after) its ack: it takes its place in seq order.
    pendingByMid.delete(data.mid);
    waiting.li.classList.remove('pending');
    place(waiting.li, seq);
    setMeta(waiting.li, seq, ts, { kind: 'sent', text: 'sent ✓' });
    return;
  }
  if (bySeq.has(seq)) return;
  const li = messageItem(typeof data?.name === 'string' ? data.name : nameOf(from), text, mine);
  setMeta(li, seq, ts, mine ? { kind: 'sent', text: 'sent ✓' } : null);
  place(li, seq);
}

function showSystem(seq, text) {
  if (bySeq.has(seq)) return;
  const li = document.createElement('li');
  li.className = 'sys';
  li.textContent = text;
  place(li, seq);
}

function showOutgoing(msg) {
  const mid = msg.data?.mid;
  const waiting = pendingByMid.get(mid);
  if (!waiting) {
    // Already placed by its broadcast, or not a chat message of this page.
    const placed = msg.seq !== undefined ? bySeq.get(msg.seq) : undefined;
    if (placed && msg.status === 'sent') setMeta(placed, msg.seq, Date.now(), statusOf(msg));
    return;
  }
  if (msg.status === 'sent') {
    pendingByMid.delete(mid);
    waiting.li.classList.remove('pending');
    place(waiting.li, msg.seq);
  }
  setMeta(waiting.li, msg.seq, msg.status === 'sent' ? Date.now() : 0, statusOf(msg));
}

el.chatForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = el.chatInput.value.trim();
  if (!room || !text) return;
  const name = el.meName.textContent;
  const mid = randomId();
  const li = messageItem(name, text, true);
  li.classList.add('pending');
  pendingByMid.set(mid, { li });
  el.messages.append(li);
  el.messages.scrollTop = el.messages.scrollHeight;
  // Never throws; offline it waits in the SDK's outbox and goes out after the room is resumed.
  const msg = room.publish('chat', { text, name, mid });
  showOutgoing(msg);
  el.chatInput.value = '';
});

function renderHistoryEntry(e) {
  if (e.name === 'room:event' && e.payload.type === 'chat') showChat(e.seq, e.payload.from, e.payload.data, e.payload.ts);
  else if (e.name === 'room:participant:joined') {
    names.set(e.payload.participant.clientId, e.payload.participant.name);
    showSystem(e.seq, `${e.payload.participant.name} joined`);
  }
  else if (e.name === 'room:participant:left') showSystem(e.seq, `${nameOf(e.payload.clientId)} left`);
}

async function loadHistory() {
  const r = room;
  try {
    const page = await r.history({ limit: HISTORY_LIMIT });
    if (room !== r) return;
    for (const e of page.events) renderHistoryEntry(e);
    el.historyNote.hidden = page.recovered;
    el.historyNote.textContent = page.recovered ? '' : 'Older messages are no longer kept by the server (its event log keeps the recent ones only).';
  } catch (err) {
    if (room === r && err.code !== 'CLOSED') {
      el.historyNote.hidden = false;
      el.historyNote.textContent = `Recent messages could not be loaded (${err.code ?? err.message}).`;
    }
  }
}

// ---- members --------------------------------------------------------------------------------------
function renderMembers() {
  if (!room) return;
  const me = client.clientId;
  const hosting = room.self?.role === 'host';
  const people = [...room.participants].sort((a, b) => a.joinedAt - b.joinedAt);
  for (const p of people) names.set(p.clientId, p.name);
  el.memberCount.textContent = `(${people.length})`;
  el.members.replaceChildren(
    ...people.map((p) => {
      const li = document.createElement('li');
      li.dataset.clientId = p.clientId;
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = p.name + (p.clientId === me ? ' (you)' : '');
      const presence = document.createElement('span');
      presence.className = 'presence';
      presence.dataset.status = p.status;
      presence.textContent = p.status;
      li.append(name, presence);
      if (p.role === 'host' || p.canControl) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = p.role === 'host' ? 'host' : 'controls playback';
        li.append(tag);
      }
      if (hosting && p.clientId !== me) {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = p.canControl ? 'Take control back' : 'Give control';
        b.setAttribute('aria-label', `${b.textContent}: ${p.name}`);
        b.addEventListener('click', () => room?.grantControl(p.clientId, !p.canControl).catch((err) => showControlError(err)));
        li.append(b);
      }
      return li;
    }),
  );
  renderControls();
}

// ---- synchronized playback ------------------------------------------------------------------------
// The "player" runs on this tab's own clock from the moment a command takes effect (scheduled on
// the server's clock); drift is how far it is from the room's timeline, room.currentPosition().
const player = { playing: false, pos: 0, at: 0 };
let followTimer;
let lastSync = null;
let dragging = false;

function playerPosition() {
  return Math.min(TRACK_MS, player.playing ? player.pos + (performance.now() - player.at) : player.pos);
}

function followPlayback(pb) {
  clearTimeout(followTimer);
  if (!pb || !room) return;
  const wait = pb.startAtServerTime == null ? 0 : Math.max(0, msUntilEffective(pb, client.serverNow()));
  followTimer = setTimeout(() => {
    if (!room) return;
    player.pos = room.currentPosition();
    player.at = performance.now();
    player.playing = room.playback?.playing === true && room.playback.trackId !== null;
  }, wait);
  renderControls();
}

function renderControls() {
  if (!room) return;
  const can = room.canControl;
  const pb = room.playback;
  el.playBtn.disabled = !can || pb?.playing === true;
  el.pauseBtn.disabled = !can || pb?.playing !== true;
  el.seek.disabled = !can;
  el.controlHint.textContent = can ? 'You control playback: every tab follows.' : 'Only the host, or members the host gives control, can play, pause and seek.';
}

function showControlError(err) {
  el.controlHint.textContent = `Refused: ${err.code ?? err.message}`;
}

const fmt = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};
const signed = (ms) => `${ms >= 0 ? '+' : '−'}${Math.abs(ms).toFixed(ms !== 0 && Math.abs(ms) < 10 ? 1 : 0)} ms`;

function renderClock() {
  el.offset.textContent = client.clockSynced ? signed(client.clockOffset) : 'not measured yet';
  el.rtt.textContent = client.rttMs === null ? '—' : `${client.rttMs.toFixed(1)} ms`;
}

function tick() {
  if (!room || el.room.hidden) return;
  const pb = room.playback;
  const position = Math.min(TRACK_MS, room.currentPosition());
  if (!dragging) el.seek.value = String(position);
  el.seek.setAttribute('aria-valuetext', `${fmt(position)} of ${fmt(TRACK_MS)}`);
  el.pos.textContent = fmt(position);
  el.playState.textContent = !pb?.trackId ? 'stopped' : pb.playing ? (position >= TRACK_MS ? 'ended' : 'playing') : 'paused';
  const now = player.playing || player.pos > 0 ? `${signed(Math.round((playerPosition() - position) * 10) / 10)} now` : '—';
  const sync = lastSync ? ` · ${signed(Math.round(lastSync.drift))} at the last server sync, ${Math.round((performance.now() - lastSync.at) / 1000)} s ago` : '';
  el.drift.textContent = `${now}${sync}`;
  renderClock();
}
setInterval(tick, 250);

el.playBtn.addEventListener('click', () => {
  if (!room) return;
  const at = room.playback?.trackId ? room.currentPosition() : 0;
  room.play(TRACK, at >= TRACK_MS ? 0 : Math.round(at)).catch(showControlError);
});
el.pauseBtn.addEventListener('click', () => room?.pause().catch(showControlError));
el.seek.addEventListener('input', () => {
  dragging = true;
  el.pos.textContent = fmt(Number(el.seek.value));
});
el.seek.addEventListener('change', async () => {
  const to = Number(el.seek.value);
  try {
    if (!room) return;
    // seek needs a loaded track: the first seek of a stopped room loads it paused.
    if (room.playback?.trackId) await room.seek(to);
    else {
      await room.play(TRACK, to);
      await room.pause(to);
    }
  } catch (err) {
    showControlError(err);
  } finally {
    dragging = false;
  }
});

// ---- a reload goes straight back in (same clientId and session: the seat is kept) ---------------
const savedRoom = tabStore.getItem('demo:room');
const savedName = tabStore.getItem('demo:name');
if (savedRoom && savedName) void enter(savedRoom, savedName);
else el.name.focus();

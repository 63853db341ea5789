/**
 * k6 API shim for Node — the VU side. Implements the subset of k6 the scripts in load-tests/k6
 * use, with k6's *blocking* semantics, so an unmodified k6 script's VU code runs under Node:
 *
 *   k6            check, sleep, fail, group
 *   k6/ws         connect(url, params, fn) — blocks, running the socket's event loop (open, message,
 *                 close, error, ping, pong handlers; socket.send/close/ping/setTimeout/setInterval)
 *                 until the socket closes, exactly like k6's legacy k6/ws
 *   k6/http       request/get/post/put/del — synchronous, returning { status, body, headers, timings, json() }
 *   k6/metrics    Counter, Gauge, Rate, Trend
 *   k6/crypto     hmac, sha1/sha256/sha512/md5, randomBytes
 *   k6/encoding   b64encode, b64decode
 *   k6/execution  vu.idInTest, vu.iterationInInstance, scenario.name, scenario.iterationInTest (approx.)
 *
 * How blocking works: each VU is a worker thread (load-tests/node/vu-worker.mjs). The network lives
 * in the runner's main thread (io-host.mjs); the VU posts requests to it over a MessagePort and
 * sleeps in Atomics.wait on a SharedArrayBuffer until the host signals a reply/event, then drains the
 * port synchronously with receiveMessageOnPort. So ws.connect and http.* can block the VU (as in
 * k6's goja VUs) while the host's event loop keeps the sockets alive.
 *
 * This module must be imported inside a VU worker after installRuntime(); calling a k6 API in any
 * other thread throws.
 */
import { receiveMessageOnPort } from 'node:worker_threads';
import { createHash, createHmac, randomBytes as nodeRandomBytes } from 'node:crypto';

// ---------------------------------------------------------------------------------------------
// runtime
// ---------------------------------------------------------------------------------------------

/** Thrown through VU code when the runner hard-stops the VU (duration + gracefulStop elapsed). */
export class HardStop extends Error {
  constructor() {
    super('VU hard-stopped by the runner');
    this.name = 'HardStop';
  }
}

const SIG_EVENTS = 0; // incremented by the host after every message it posts to this VU
const SIG_STOP = 1; // set to 1 by the runner: stop now

let rt = null;

/**
 * Installs the VU runtime: `port` (MessagePort to the host), `sab` (SharedArrayBuffer, Int32[2]),
 * `vu` (1-based; 0 for setup/teardown), `env` (the __ENV object), `scenario` name.
 */
export function installRuntime({ port, sab, vu, env, scenario, sharedIterations }) {
  rt = {
    port,
    sig: new Int32Array(sab),
    vu,
    iter: 0,
    iterInTest: 0,
    scenario: scenario || 'default',
    inbox: [],
    nextId: 1,
    samples: [],
    lastFlush: Date.now(),
    defined: new Set(),
    sharedIterations: sharedIterations ? new Int32Array(sharedIterations) : null,
  };
  globalThis.__ENV = env;
  globalThis.__VU = vu;
  globalThis.__ITER = 0;
  return rt;
}

function runtime() {
  if (!rt) throw new Error('k6 shim: no VU runtime in this thread (k6 APIs only work inside load-tests/node/vu-worker.mjs)');
  return rt;
}

export function setIteration(iter) {
  const r = runtime();
  r.iter = iter;
  globalThis.__ITER = iter;
}

export function post(msg) {
  runtime().port.postMessage(msg);
}

export function stopRequested() {
  return rt !== null && Atomics.load(rt.sig, SIG_STOP) === 1;
}

/**
 * Next message from the host matching `filter`, waiting until `deadline` (epoch ms; Infinity ok).
 * Non-matching messages are kept for later callers. Returns null on deadline; throws HardStop.
 */
function nextMessage(filter, deadline) {
  const r = runtime();
  for (let i = 0; i < r.inbox.length; i++) {
    if (filter(r.inbox[i])) return r.inbox.splice(i, 1)[0];
  }
  for (;;) {
    const seen = Atomics.load(r.sig, SIG_EVENTS);
    let m;
    while ((m = receiveMessageOnPort(r.port)) !== undefined) {
      if (filter(m.message)) return m.message;
      r.inbox.push(m.message);
    }
    if (Atomics.load(r.sig, SIG_STOP) === 1) throw new HardStop();
    maybeFlush();
    const remaining = deadline - Date.now();
    if (remaining <= 0) return null;
    Atomics.wait(r.sig, SIG_EVENTS, seen, Math.min(remaining, 500));
  }
}

function dropInbox(filter) {
  const r = runtime();
  r.inbox = r.inbox.filter((m) => !filter(m));
}

// ---------------------------------------------------------------------------------------------
// metrics
// ---------------------------------------------------------------------------------------------

export function defineMetric(name, type, isTime) {
  const r = runtime();
  if (r.defined.has(name)) return;
  r.defined.add(name);
  r.port.postMessage({ op: 'metric.def', name, type, isTime: !!isTime });
}

export function addSample(name, type, value, tags) {
  const r = runtime();
  if (!r.defined.has(name)) defineMetric(name, type, false);
  r.samples.push([name, typeof value === 'boolean' ? (value ? 1 : 0) : Number(value), tags && Object.keys(tags).length ? tags : null]);
  if (r.samples.length >= 500) flushMetrics();
}

export function flushMetrics() {
  const r = runtime();
  if (r.samples.length) r.port.postMessage({ op: 'metrics', samples: r.samples });
  r.samples = [];
  r.lastFlush = Date.now();
}

function maybeFlush() {
  if (rt && rt.samples.length && Date.now() - rt.lastFlush > 500) flushMetrics();
}

const METRIC_NAME = /^[A-Za-z0-9_]{1,128}$/;

class Metric {
  constructor(name, type, isTime) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    this.name = name;
    this.type = type;
    this.isTime = !!isTime;
    defineMetric(name, type, isTime);
  }
  add(value, tags) {
    addSample(this.name, this.type, value, tags);
  }
}
export class Counter extends Metric {
  constructor(name, isTime) {
    super(name, 'counter', isTime);
  }
}
export class Gauge extends Metric {
  constructor(name, isTime) {
    super(name, 'gauge', isTime);
  }
}
export class Rate extends Metric {
  constructor(name) {
    super(name, 'rate', false);
  }
}
export class Trend extends Metric {
  constructor(name, isTime) {
    super(name, 'trend', isTime);
  }
}

// ---------------------------------------------------------------------------------------------
// k6
// ---------------------------------------------------------------------------------------------

export function check(value, sets, tags) {
  let all = true;
  for (const [name, fn] of Object.entries(sets || {})) {
    let ok;
    if (typeof fn === 'function') {
      try {
        ok = !!fn(value);
      } catch (e) {
        if (e instanceof HardStop) throw e;
        ok = false;
        console.error(`check ${JSON.stringify(name)} threw: ${e && e.message}`);
      }
    } else ok = !!fn;
    addSample('checks', 'rate', ok, { ...(tags || {}), check: name });
    if (!ok) all = false;
  }
  return all;
}

/** Blocks the VU for `seconds` (interruptible by a hard stop). */
export function sleep(seconds) {
  const r = runtime();
  const until = Date.now() + Math.max(0, Number(seconds) || 0) * 1000;
  flushMetrics();
  for (;;) {
    if (Atomics.load(r.sig, SIG_STOP) === 1) throw new HardStop();
    const left = until - Date.now();
    if (left <= 0) return;
    Atomics.wait(r.sig, SIG_STOP, 0, Math.min(left, 1000));
  }
}

export function fail(message) {
  throw new Error(message === undefined ? 'fail() called' : String(message));
}

export function group(name, fn) {
  return fn();
}

export function randomSeed() {}

// ---------------------------------------------------------------------------------------------
// k6/ws
// ---------------------------------------------------------------------------------------------

const CONNECT_TIMEOUT_MS = 60_000;
const CLOSE_WAIT_MS = 3_000;

/** Go's %.2f, for k6's error text. */
function goFixed2(n) {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return n.toFixed(2);
}

/**
 * The delay k6 v0.48 accepts for socket.setTimeout / socket.setInterval (js/modules/k6/ws/ws.go):
 * the milliseconds become a time.Duration (nanoseconds, truncated, int64) and anything <= 0 is an
 * error thrown into the script — 0, negatives, less than a nanosecond, NaN (a missing or
 * non-numeric argument) and values past int64 (which wrap negative on amd64). The shim throws the
 * same error, so a script that only works because the shim was lenient fails here too.
 */
export function k6TimerDelayMs(kind, ms) {
  const n = Number(ms);
  const ns = n * 1e6;
  if (!(Number.isFinite(ns) && Math.trunc(ns) > 0 && ns < 2 ** 63)) {
    throw new Error(`${kind} requires a >0 timeout parameter, received ${goFixed2(n)}`);
  }
  return n;
}

class ShimSocket {
  constructor(sid) {
    this._sid = sid;
    this._handlers = {};
    this._timers = [];
    this._timerSeq = 0;
    this._closed = false;
    this._closing = false;
    this._closeDeadline = Infinity;
  }
  on(event, fn) {
    // k6 keeps a list per event.
    (this._handlers[event] ||= []).push(fn);
  }
  _emit(event, ...args) {
    const list = this._handlers[event];
    if (!list) return;
    for (const fn of list.slice()) fn(...args);
  }
  send(data) {
    if (this._closed || this._closing) return;
    addSample('ws_msgs_sent', 'counter', 1);
    post({ op: 'ws.send', sid: this._sid, data: String(data) });
  }
  sendBinary(buf) {
    if (this._closed || this._closing) return;
    addSample('ws_msgs_sent', 'counter', 1);
    post({ op: 'ws.send', sid: this._sid, data: buf, binary: true });
  }
  ping() {
    if (this._closed || this._closing) return;
    post({ op: 'ws.ping', sid: this._sid });
  }
  close(code) {
    if (this._closed || this._closing) return;
    this._closing = true;
    this._closeDeadline = Date.now() + CLOSE_WAIT_MS;
    post({ op: 'ws.close', sid: this._sid, code: code || 1000 });
  }
  setTimeout(fn, ms) {
    const delay = k6TimerDelayMs('setTimeout', ms);
    this._timers.push({ id: ++this._timerSeq, due: Date.now() + delay, fn, every: 0 });
  }
  setInterval(fn, ms) {
    // Sub-millisecond intervals run once per millisecond here (Date.now() resolution).
    const every = Math.max(1, k6TimerDelayMs('setInterval', ms));
    this._timers.push({ id: ++this._timerSeq, due: Date.now() + every, fn, every });
  }
  _nextDue() {
    let d = this._closing ? this._closeDeadline : Infinity;
    for (const t of this._timers) if (t.due < d) d = t.due;
    return d;
  }
  _runDueTimers() {
    // Timers only fire while the socket is open (k6: "if the WebSocket connection is still open then").
    for (;;) {
      if (this._closed || this._closing) return;
      const now = Date.now();
      let best = null;
      for (const t of this._timers) if (t.due <= now && (best === null || t.due < best.due || (t.due === best.due && t.id < best.id))) best = t;
      if (!best) return;
      if (best.every > 0) best.due = Math.max(best.due + best.every, now + 1);
      else this._timers.splice(this._timers.indexOf(best), 1);
      best.fn();
    }
  }
}

function wsConnect(url, params, fn) {
  if (typeof params === 'function') {
    fn = params;
    params = {};
  }
  const r = runtime();
  const sid = `${r.vu}:${r.nextId++}`;
  const started = Date.now();
  const mine = (m) => m.sid === sid;
  post({ op: 'ws.open', sid, url: String(url), headers: (params && params.headers) || {} });
  let first;
  try {
    first = nextMessage((m) => mine(m) && (m.ev === 'ws.open' || m.ev === 'ws.error' || m.ev === 'ws.close'), started + CONNECT_TIMEOUT_MS);
  } catch (e) {
    post({ op: 'ws.close', sid, code: 1001 });
    throw e;
  }
  if (!first || first.ev !== 'ws.open') {
    post({ op: 'ws.close', sid, code: 1001 });
    dropInbox(mine);
    const why = first ? first.message || `closed with code ${first.code}` : 'timeout';
    throw new Error(`websocket: dial ${url}: ${why}`);
  }
  addSample('ws_connecting', 'trend', Date.now() - started);
  addSample('ws_sessions', 'counter', 1);
  const socket = new ShimSocket(sid);
  let closeCode = null;
  try {
    fn(socket);
    socket._emit('open');
    while (!socket._closed) {
      const msg = nextMessage(mine, socket._nextDue());
      if (msg) {
        switch (msg.ev) {
          case 'ws.message':
            addSample('ws_msgs_received', 'counter', 1);
            if (msg.binary) socket._emit('binaryMessage', msg.data);
            else socket._emit('message', msg.data);
            break;
          case 'ws.ping':
            socket._emit('ping');
            break;
          case 'ws.pong':
            socket._emit('pong');
            break;
          case 'ws.error':
            socket._emit('error', { error: () => msg.message, message: msg.message });
            break;
          case 'ws.close':
            socket._closed = true;
            closeCode = msg.code;
            socket._emit('close', msg.code);
            break;
          default:
            break;
        }
      } else if (socket._closing && Date.now() >= socket._closeDeadline) {
        // The host never confirmed the close: give up on it.
        socket._closed = true;
        closeCode = 1006;
        socket._emit('close', 1006);
      }
      socket._runDueTimers();
    }
  } finally {
    if (!socket._closed) post({ op: 'ws.close', sid, code: 1001, terminate: true });
    dropInbox(mine);
    addSample('ws_session_duration', 'trend', Date.now() - started);
  }
  return { url: String(url), status: first.status || 101, headers: first.headers || {}, body: '', error: '', error_code: 0, closeCode };
}

export const ws = { connect: wsConnect };

// ---------------------------------------------------------------------------------------------
// k6/http
// ---------------------------------------------------------------------------------------------

function parseTimeout(t) {
  if (t === undefined || t === null) return 60_000;
  if (typeof t === 'number') return t;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(t).trim());
  if (!m) return 60_000;
  const n = parseFloat(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
}

function httpRequest(method, url, body, params) {
  const r = runtime();
  const rid = `${r.vu}:h${r.nextId++}`;
  const p = params || {};
  const headers = { ...(p.headers || {}) };
  let payload = body;
  if (payload !== undefined && payload !== null && typeof payload === 'object' && !(payload instanceof ArrayBuffer) && !ArrayBuffer.isView(payload)) {
    // k6 form-encodes objects.
    payload = new URLSearchParams(Object.entries(payload).map(([k, v]) => [k, String(v)])).toString();
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  const timeoutMs = parseTimeout(p.timeout);
  const started = Date.now();
  post({ op: 'http', rid, method: String(method).toUpperCase(), url: String(url), body: payload === undefined ? null : payload, headers, timeoutMs });
  const res = nextMessage((m) => m.rid === rid, started + timeoutMs + 5000) || { status: 0, body: '', headers: {}, error: 'request timeout', duration: Date.now() - started };
  const tags = { method: String(method).toUpperCase(), name: (p.tags && p.tags.name) || String(url), status: String(res.status) };
  addSample('http_reqs', 'counter', 1, tags);
  addSample('http_req_duration', 'trend', res.duration, tags);
  addSample('http_req_failed', 'rate', res.status === 0 || res.status >= 400, tags);
  return {
    url: String(url),
    status: res.status,
    body: res.body,
    headers: res.headers || {},
    error: res.error || '',
    error_code: res.status === 0 ? 1000 : 0,
    timings: { duration: res.duration, waiting: res.duration },
    json(selector) {
      const v = JSON.parse(this.body);
      if (!selector) return v;
      return String(selector)
        .split('.')
        .reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), v);
    },
  };
}

export const http = {
  request: httpRequest,
  get: (url, params) => httpRequest('GET', url, null, params),
  head: (url, params) => httpRequest('HEAD', url, null, params),
  post: (url, body, params) => httpRequest('POST', url, body, params),
  put: (url, body, params) => httpRequest('PUT', url, body, params),
  patch: (url, body, params) => httpRequest('PATCH', url, body, params),
  del: (url, body, params) => httpRequest('DELETE', url, body, params),
};

// ---------------------------------------------------------------------------------------------
// k6/crypto and k6/encoding
// ---------------------------------------------------------------------------------------------

const ALGS = { md5: 'md5', sha1: 'sha1', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512', sha512_224: 'sha512-224', sha512_256: 'sha512-256' };

function toBuf(x) {
  if (typeof x === 'string') return Buffer.from(x, 'utf8');
  if (x instanceof ArrayBuffer) return Buffer.from(x);
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return Buffer.from(String(x), 'utf8');
}

/** k6 output encodings: hex, base64, base64url (padded, Go URLEncoding), base64rawurl, binary. */
function encodeDigest(buf, enc) {
  switch (enc) {
    case 'hex':
      return buf.toString('hex');
    case 'base64':
      return buf.toString('base64');
    case 'base64url': {
      const s = buf.toString('base64url');
      return s + '='.repeat((4 - (s.length % 4)) % 4);
    }
    case 'base64rawurl':
      return buf.toString('base64url');
    case 'binary':
      return Array.from(buf);
    default:
      throw new Error(`k6/crypto: unsupported output encoding ${JSON.stringify(enc)}`);
  }
}

function alg(a) {
  const n = ALGS[a];
  if (!n) throw new Error(`k6/crypto: unsupported algorithm ${JSON.stringify(a)}`);
  return n;
}

export const crypto = {
  hmac: (algorithm, secret, data, enc) => encodeDigest(createHmac(alg(algorithm), toBuf(secret)).update(toBuf(data)).digest(), enc),
  md5: (data, enc) => encodeDigest(createHash('md5').update(toBuf(data)).digest(), enc),
  sha1: (data, enc) => encodeDigest(createHash('sha1').update(toBuf(data)).digest(), enc),
  sha256: (data, enc) => encodeDigest(createHash('sha256').update(toBuf(data)).digest(), enc),
  sha384: (data, enc) => encodeDigest(createHash('sha384').update(toBuf(data)).digest(), enc),
  sha512: (data, enc) => encodeDigest(createHash('sha512').update(toBuf(data)).digest(), enc),
  randomBytes: (n) => {
    const b = nodeRandomBytes(n);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  },
};

export const encoding = {
  b64encode(input, enc) {
    const buf = toBuf(input);
    switch (enc || 'std') {
      case 'std':
        return buf.toString('base64');
      case 'rawstd':
        return buf.toString('base64').replace(/=+$/, '');
      case 'url': {
        const s = buf.toString('base64url');
        return s + '='.repeat((4 - (s.length % 4)) % 4);
      }
      case 'rawurl':
        return buf.toString('base64url');
      default:
        throw new Error(`k6/encoding: unsupported encoding ${JSON.stringify(enc)}`);
    }
  },
  b64decode(input, enc, format) {
    const e = enc || 'std';
    const buf = Buffer.from(String(input), e === 'url' || e === 'rawurl' ? 'base64url' : 'base64');
    if (format === 's') return buf.toString('utf8');
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  },
};

// ---------------------------------------------------------------------------------------------
// k6/execution (approximate)
// ---------------------------------------------------------------------------------------------

export const execution = {
  get vu() {
    const r = runtime();
    return { idInTest: r.vu, idInInstance: r.vu, iterationInInstance: r.iter, iterationInScenario: r.iter, tags: {} };
  },
  get scenario() {
    const r = runtime();
    return { name: r.scenario, executor: 'node-shim', iterationInTest: r.iterInTest, iterationInInstance: r.iter, startTime: 0, progress: 0 };
  },
  get instance() {
    return { vusActive: 0, vusInitialized: 0, iterationsCompleted: 0, iterationsInterrupted: 0, currentTestRunDuration: 0 };
  },
  test: {
    abort(reason) {
      post({ op: 'abort', reason: String(reason || 'test.abort() called') });
      throw new HardStop();
    },
  },
};

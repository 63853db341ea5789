/**
 * The network side of one shimmed VU, living in the runner's main thread: opens websockets (the
 * `ws` package) and performs HTTP requests (fetch) on behalf of the VU worker, and posts every
 * event back followed by an Atomics.notify that wakes the (blocked) VU. See k6-shim.mjs.
 */
import { WebSocket } from 'ws';

const SIG_EVENTS = 0;
const SIG_STOP = 1;

export class VuHost {
  /**
   * @param {number} vu            VU id (0 = setup/teardown)
   * @param {MessagePort} port     host end of the VU's channel
   * @param {SharedArrayBuffer} sab Int32[2]: [events counter, stop flag]
   * @param {(msg: object, host: VuHost) => void} onControl  lifecycle/metrics messages from the VU
   */
  constructor(vu, port, sab, onControl) {
    this.vu = vu;
    this.port = port;
    this.sig = new Int32Array(sab);
    this.onControl = onControl;
    this.sockets = new Map();
    this.requests = new Set();
    this.closed = false;
    port.on('message', (msg) => this._onMessage(msg));
  }

  _push(msg) {
    if (this.closed) return;
    this.port.postMessage(msg);
    Atomics.add(this.sig, SIG_EVENTS, 1);
    Atomics.notify(this.sig, SIG_EVENTS);
  }

  /** Hard-stops the VU: its next wait throws HardStop. */
  stop() {
    Atomics.store(this.sig, SIG_STOP, 1);
    Atomics.notify(this.sig, SIG_STOP);
    Atomics.notify(this.sig, SIG_EVENTS);
  }

  _onMessage(msg) {
    switch (msg.op) {
      case 'ws.open':
        return this._wsOpen(msg);
      case 'ws.send': {
        const s = this.sockets.get(msg.sid);
        if (s && s.readyState === WebSocket.OPEN) s.send(msg.data, { binary: !!msg.binary });
        return;
      }
      case 'ws.ping': {
        const s = this.sockets.get(msg.sid);
        if (s && s.readyState === WebSocket.OPEN) s.ping();
        return;
      }
      case 'ws.close': {
        const s = this.sockets.get(msg.sid);
        if (!s) return;
        if (msg.terminate || s.readyState === WebSocket.CONNECTING) s.terminate();
        else s.close(msg.code >= 1000 && msg.code < 5000 && msg.code !== 1005 && msg.code !== 1006 ? msg.code : 1000);
        // A peer that never completes the closing handshake must not keep the VU waiting.
        setTimeout(() => s.terminate(), 2000).unref();
        return;
      }
      case 'http':
        return this._http(msg);
      default:
        return this.onControl(msg, this);
    }
  }

  _wsOpen({ sid, url, headers }) {
    let s;
    try {
      s = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: 30_000 });
    } catch (e) {
      this._push({ ev: 'ws.error', sid, message: e.message });
      this._push({ ev: 'ws.close', sid, code: 1006 });
      return;
    }
    this.sockets.set(sid, s);
    s.on('upgrade', (res) => {
      s._k6Headers = res.headers;
    });
    s.on('open', () => this._push({ ev: 'ws.open', sid, status: 101, headers: s._k6Headers || {} }));
    s.on('message', (data, isBinary) => {
      if (isBinary) {
        const b = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
        this._push({ ev: 'ws.message', sid, binary: true, data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
      } else this._push({ ev: 'ws.message', sid, data: data.toString() });
    });
    s.on('ping', () => this._push({ ev: 'ws.ping', sid }));
    s.on('pong', () => this._push({ ev: 'ws.pong', sid }));
    s.on('error', (e) => this._push({ ev: 'ws.error', sid, message: e.message }));
    s.on('close', (code) => {
      this.sockets.delete(sid);
      this._push({ ev: 'ws.close', sid, code });
    });
  }

  async _http({ rid, method, url, body, headers, timeoutMs }) {
    const started = Date.now();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    this.requests.add(ac);
    try {
      const res = await fetch(url, { method, headers, body: body === null || method === 'GET' || method === 'HEAD' ? undefined : body, signal: ac.signal });
      const text = await res.text();
      this._push({ ev: 'http', rid, status: res.status, body: text, headers: Object.fromEntries(res.headers), duration: Date.now() - started });
    } catch (e) {
      const cause = e && e.cause && e.cause.code ? ` (${e.cause.code})` : '';
      this._push({ ev: 'http', rid, status: 0, body: '', headers: {}, error: `${e && e.name === 'AbortError' ? 'request timeout' : e.message}${cause}`, duration: Date.now() - started });
    } finally {
      clearTimeout(timer);
      this.requests.delete(ac);
    }
  }

  /** Closes every socket and aborts requests (end of run). */
  shutdown() {
    this.closed = true;
    for (const s of this.sockets.values()) s.terminate();
    this.sockets.clear();
    for (const ac of this.requests) ac.abort();
    this.port.close();
  }
}

/**
 * The k6 load-test library's wire layer (load-tests/k6/lib/socketio.js, jwt.js): Engine.IO v4 /
 * Socket.IO v5 framing, the client state machine, seq tracking and HS256 signing — checked
 * against literal frames, against the official socket.io-parser, and against a real socket.io
 * server. Also the Node runner's pure parts (plans, thresholds).
 *   node --import tsx --test test/unit/k6-wire.test.ts
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { REQUEST_EVENTS, SERVER_EVENTS } from '@tether/protocol';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Encoder, Decoder, PacketType } from 'socket.io-parser';
import { Server } from 'socket.io';
import { WebSocket } from 'ws';
import { jwtVerify } from 'jose';
import {
  ENGINE,
  PACKET,
  SeqTracker,
  SocketIOClient,
  ackFrame,
  connectFrame,
  decodeEngine,
  decodeFrame,
  decodePacket,
  disconnectFrame,
  encodeEngine,
  encodeFrame,
  encodePacket,
  engineUrl,
  eventFrame,
  httpBase,
  randomId,
} from '../../load-tests/k6/lib/socketio.js';
import { base64UrlString, signJwt, utf8Bytes } from '../../load-tests/k6/lib/jwt.js';
import { evalThreshold, makePlan, parseDuration, Aggregator } from '../../load-tests/node/run-k6-script.mjs';

type Frame = string;

/** A SocketIOClient on a fake transport with a controllable clock. */
function fakeClient(opts: { nsp?: string; ackTimeoutMs?: number } = {}) {
  const sent: Frame[] = [];
  let closed = 0;
  let now = 1_000_000;
  const client = new SocketIOClient({
    nsp: opts.nsp,
    ackTimeoutMs: opts.ackTimeoutMs ?? 1000,
    now: () => now,
    send: (f: Frame) => sent.push(f),
    close: () => {
      closed++;
    },
  });
  return {
    client,
    sent,
    closedCount: () => closed,
    advance(ms: number) {
      now += ms;
    },
    now: () => now,
    open() {
      client.handleFrame('0{"sid":"eio-1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}');
    },
    connectAck(sid = 'sio-1') {
      client.handleFrame(`40/sync,{"sid":"${sid}"}`);
    },
  };
}

describe('engine.io v4 framing', () => {
  it('decodes the open handshake', () => {
    const p = decodeEngine('0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}');
    assert.equal(p.type, 'open');
    assert.deepEqual(p.data, { sid: 'abc', upgrades: [], pingInterval: 25000, pingTimeout: 20000, maxPayload: 1000000 });
  });

  it('decodes ping, pong, message, close, noop; encodes by name or digit', () => {
    assert.deepEqual(decodeEngine('2'), { type: 'ping', data: '' });
    assert.deepEqual(decodeEngine('3'), { type: 'pong', data: '' });
    assert.deepEqual(decodeEngine('3probe'), { type: 'pong', data: 'probe' });
    assert.deepEqual(decodeEngine('42/sync,["x"]'), { type: 'message', data: '2/sync,["x"]' });
    assert.deepEqual(decodeEngine('1'), { type: 'close', data: '' });
    assert.deepEqual(decodeEngine('6'), { type: 'noop', data: '' });
    assert.equal(encodeEngine('pong'), '3');
    assert.equal(encodeEngine('ping'), '2');
    assert.equal(encodeEngine('4', 'hello'), '4hello');
    assert.equal(encodeEngine('message', '0/sync,'), '40/sync,');
    assert.equal(ENGINE.PONG, '3');
  });

  it('rejects empty, unknown and malformed frames; passes binary through as binary', () => {
    assert.throws(() => decodeEngine(''), /empty/);
    assert.throws(() => decodeEngine('7'), /unknown engine.io packet type/);
    assert.throws(() => decodeEngine('x'), /unknown engine.io packet type/);
    assert.throws(() => decodeEngine('0{not json'), /invalid engine.io open/);
    assert.throws(() => decodeEngine('0{"nosid":1}'), /no sid/);
    assert.throws(() => encodeEngine('bogus'), /unknown engine.io packet type/);
    const bin = new ArrayBuffer(2);
    assert.equal(decodeEngine(bin as unknown as string).type, 'binary');
  });

  it('builds the websocket URL with EIO=4 and transport=websocket', () => {
    assert.equal(engineUrl('http://127.0.0.1:3000'), 'ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket');
    assert.equal(engineUrl('https://rt.example.com/'), 'wss://rt.example.com/socket.io/?EIO=4&transport=websocket');
    assert.equal(engineUrl('127.0.0.1:3000', 'custom'), 'ws://127.0.0.1:3000/custom/?EIO=4&transport=websocket');
    assert.equal(engineUrl('ws://h:1'), 'ws://h:1/socket.io/?EIO=4&transport=websocket');
    assert.equal(httpBase('ws://h:1/'), 'http://h:1');
    assert.equal(httpBase('wss://h'), 'https://h');
    assert.equal(httpBase('h:2'), 'http://h:2');
  });
});

describe('socket.io v5 framing on /sync', () => {
  it('writes the namespace and a comma before the ack id and payload', () => {
    assert.equal(connectFrame('/sync', { token: 't', clientId: 'client-0001' }), '40/sync,{"token":"t","clientId":"client-0001"}');
    assert.equal(connectFrame('/sync', undefined), '40/sync,');
    assert.equal(disconnectFrame('/sync'), '41/sync,');
    assert.equal(eventFrame('/sync', 'room:join', { roomCode: 'ABCDEFGH' }), '42/sync,["room:join",{"roomCode":"ABCDEFGH"}]');
    assert.equal(eventFrame('/sync', 'room:publish', { type: 'x' }, 7), '42/sync,7["room:publish",{"type":"x"}]');
    assert.equal(eventFrame('/sync', 'ping-no-payload', undefined, 0), '42/sync,0["ping-no-payload"]');
    assert.equal(ackFrame('/sync', 12, [{ ok: true }]), '43/sync,12[{"ok":true}]');
  });

  it('omits the root namespace', () => {
    assert.equal(encodePacket({ type: PACKET.CONNECT, nsp: '/' }), '0');
    assert.equal(encodePacket({ type: PACKET.EVENT, nsp: '/', id: 3, data: ['a', 1] }), '23["a",1]');
    assert.deepEqual(decodePacket('23["a",1]'), { type: PACKET.EVENT, nsp: '/', id: 3, data: ['a', 1] });
  });

  it('decodes connect ack, connect_error, event, event with ack, ack and disconnect', () => {
    assert.deepEqual(decodePacket('0/sync,{"sid":"abc"}'), { type: 0, nsp: '/sync', data: { sid: 'abc' } });
    assert.deepEqual(decodePacket('4/sync,{"message":"bad token","data":{"code":"INVALID_TOKEN","message":"x"}}'), {
      type: 4,
      nsp: '/sync',
      data: { message: 'bad token', data: { code: 'INVALID_TOKEN', message: 'x' } },
    });
    assert.deepEqual(decodePacket('2/sync,["room:event",{"roomId":"r","seq":5}]'), { type: 2, nsp: '/sync', data: ['room:event', { roomId: 'r', seq: 5 }] });
    assert.deepEqual(decodePacket('2/sync,41["q",{}]'), { type: 2, nsp: '/sync', id: 41, data: ['q', {}] });
    assert.deepEqual(decodePacket('3/sync,41[{"ok":true,"data":{"seq":9,"duplicate":false}}]'), {
      type: 3,
      nsp: '/sync',
      id: 41,
      data: [{ ok: true, data: { seq: 9, duplicate: false } }],
    });
    assert.deepEqual(decodePacket('1/sync,'), { type: 1, nsp: '/sync' });
    assert.deepEqual(decodePacket('1/sync'), { type: 1, nsp: '/sync' });
  });

  it('round-trips every packet type through encode/decode', () => {
    const packets = [
      { type: PACKET.CONNECT, nsp: '/sync', data: { clientId: 'abc12345', lastSeq: { r1: 4 } } },
      { type: PACKET.CONNECT, nsp: '/sync' },
      { type: PACKET.DISCONNECT, nsp: '/sync' },
      { type: PACKET.EVENT, nsp: '/sync', data: ['room:presence', { roomId: 'r', seq: 1, returned: ['a'], away: [] }] },
      { type: PACKET.EVENT, nsp: '/sync', id: 0, data: ['room:rejoin', { roomId: 'r', lastSeq: 0 }] },
      { type: PACKET.EVENT, nsp: '/sync', id: 123456, data: ['x', 'ünïcødé ✓', null, 1.5] },
      { type: PACKET.ACK, nsp: '/sync', id: 9, data: [] },
      { type: PACKET.CONNECT_ERROR, nsp: '/sync', data: { message: 'm', data: { code: 'UNAUTHORIZED' } } },
    ];
    for (const p of packets) assert.deepEqual(decodePacket(encodePacket(p)), p);
    for (const p of packets) assert.deepEqual(decodeFrame(encodeFrame(p)).packet, p);
  });

  it('agrees byte for byte with the official socket.io-parser', () => {
    const encoder = new Encoder();
    const packets = [
      { type: PacketType.CONNECT, nsp: '/sync', data: { token: 'a.b.c', clientId: 'client-1', sessionToken: 'x'.repeat(32) } },
      { type: PacketType.DISCONNECT, nsp: '/sync' },
      { type: PacketType.EVENT, nsp: '/sync', data: ['room:join', { roomCode: 'ABCD2345', guestName: 'Zoë' }] },
      { type: PacketType.EVENT, nsp: '/sync', id: 17, data: ['room:publish', { type: 't', data: { n: [1, 2] }, clientMsgId: 'm-1' }] },
      { type: PacketType.ACK, nsp: '/sync', id: 17, data: [{ ok: false, error: { code: 'RATE_LIMITED', message: 'slow down' } }] },
      { type: PacketType.CONNECT_ERROR, nsp: '/sync', data: { message: 'nope', data: { code: 'INVALID_TOKEN' } } },
      { type: PacketType.EVENT, nsp: '/', id: 2, data: ['root', 1] },
    ];
    for (const p of packets) {
      const [official] = encoder.encode(p as never) as string[];
      assert.equal(encodePacket(p), official, `encode type ${p.type}`);
      // Their decoder accepts ours (and yields the same packet), ours accepts theirs.
      const decoder = new Decoder();
      let decoded: unknown;
      decoder.on('decoded', (x: unknown) => {
        decoded = x;
      });
      decoder.add(encodePacket(p));
      assert.deepEqual(decoded, p);
      const mine = decodePacket(official!);
      assert.deepEqual({ ...mine }, { ...p, ...(p.nsp ? {} : { nsp: '/' }) });
    }
  });

  it('rejects malformed and unsupported packets', () => {
    assert.throws(() => decodePacket(''), /empty/);
    assert.throws(() => decodePacket('9'), /unknown socket.io packet type/);
    assert.throws(() => decodePacket('2/sync,{"not":"an array"}'), /invalid socket.io payload/);
    assert.throws(() => decodePacket('2/sync,["connect"]'), /invalid socket.io payload/); // reserved name
    assert.throws(() => decodePacket('2/sync,[]'), /invalid socket.io payload/);
    assert.throws(() => decodePacket('3/sync,5'), /needs a payload/);
    assert.throws(() => decodePacket('1/sync,{"x":1}'), /invalid socket.io payload/);
    assert.throws(() => decodePacket('0/sync,[1]'), /invalid socket.io payload/);
    assert.throws(() => decodePacket('2/sync,[bad json'), /invalid socket.io payload/);
    assert.equal(decodePacket('51-/sync,["x",{"_placeholder":true,"num":0}]').attachments, 1, 'binary headers parse (the client rejects them)');
    assert.throws(() => decodePacket('5x-/sync,["x"]'), /illegal attachments/);
  });

  it('refuses to encode binary packets, bad namespaces and bad ack ids', () => {
    assert.throws(() => encodePacket({ type: PACKET.BINARY_EVENT, nsp: '/sync', data: ['x'] }), /binary/);
    assert.throws(() => encodePacket({ type: PACKET.EVENT, nsp: 'sync', data: ['x'] }), /invalid namespace/);
    assert.throws(() => encodePacket({ type: PACKET.EVENT, nsp: '/a,b', data: ['x'] }), /invalid namespace/);
    assert.throws(() => encodePacket({ type: PACKET.EVENT, nsp: '/sync', id: -1, data: ['x'] }), /invalid ack id/);
    assert.throws(() => encodePacket({ type: 8, nsp: '/sync' }), /unknown socket.io packet type/);
  });
});

describe('SocketIOClient', () => {
  it('sends the namespace connect with auth only after the engine.io open packet', () => {
    const f = fakeClient();
    f.client.connect({ clientId: 'client-0001', sessionToken: 'tok' });
    assert.deepEqual(f.sent, []);
    assert.equal(f.client.state, 'opening');
    f.open();
    assert.deepEqual(f.sent, ['40/sync,{"clientId":"client-0001","sessionToken":"tok"}']);
    assert.equal(f.client.engine.sid, 'eio-1');
    f.connectAck('abc');
    assert.equal(f.client.state, 'connected');
    assert.equal(f.client.sid, 'abc');
  });

  it('answers every engine.io ping with a pong and counts them', () => {
    const f = fakeClient();
    f.open();
    f.client.handleFrame('2');
    f.client.handleFrame('2');
    assert.deepEqual(f.sent, ['3', '3']);
    assert.equal(f.client.stats.pings, 2);
  });

  it('buffers emits until connected, then flushes them in order', () => {
    const f = fakeClient();
    f.client.connect({});
    f.client.emit('a', { n: 1 });
    f.client.emitWithAck('b', { n: 2 }, () => undefined);
    f.open();
    assert.deepEqual(f.sent, ['40/sync,{}']);
    f.connectAck();
    assert.deepEqual(f.sent, ['40/sync,{}', '42/sync,["a",{"n":1}]', '42/sync,0["b",{"n":2}]']);
  });

  it('routes acks by id, unwraps Tether acks and times out unanswered requests', () => {
    const f = fakeClient({ ackTimeoutMs: 500 });
    f.open();
    f.connectAck();
    const results: unknown[] = [];
    f.client.request('room:publish', { type: 't', data: 1, clientMsgId: 'm1' }, (err: unknown, data: unknown) => results.push(['pub', err, data]));
    f.client.request('room:join', { roomCode: 'X' }, (err: unknown, data: unknown) => results.push(['join', err, data]));
    f.client.emitWithAck('sync:ping', { clientTimestamp: 1 }, (err: unknown, res: unknown) => results.push(['raw', err, res]));
    assert.equal(f.sent[f.sent.length - 3], '42/sync,0["room:publish",{"type":"t","data":1,"clientMsgId":"m1"}]');
    assert.equal(f.client.pendingAcks, 3);
    f.client.handleFrame('43/sync,1[{"ok":false,"error":{"code":"ROOM_NOT_FOUND","message":"gone"}}]');
    f.client.handleFrame('43/sync,0[{"ok":true,"data":{"seq":4,"duplicate":false}}]');
    assert.deepEqual(results, [
      ['join', { code: 'ROOM_NOT_FOUND', message: 'gone' }, undefined],
      ['pub', null, { seq: 4, duplicate: false }],
    ]);
    f.advance(499);
    assert.equal(f.client.tick(), 0);
    f.advance(1);
    assert.equal(f.client.tick(), 1);
    assert.equal((results[2] as [string, { code: string }])[1].code, 'ACK_TIMEOUT');
    assert.equal(f.client.stats.ackTimeouts, 1);
    f.client.handleFrame('43/sync,2[{"ok":true,"data":{}}]'); // too late
    assert.equal(f.client.stats.lateAcks, 1);
    assert.equal(results.length, 3);
  });

  it('dispatches events (with an ack function when the server asks for one) and ignores other namespaces', () => {
    const f = fakeClient();
    f.open();
    f.connectAck();
    const got: unknown[] = [];
    f.client.on('session', (s: unknown) => got.push(s));
    f.client.on('server:ask', (p: unknown, ack: (...a: unknown[]) => void) => ack({ fine: true }, 2));
    f.client.handleFrame('42/sync,["session",{"clientId":"c1","epoch":1}]');
    f.client.handleFrame('42/other,["session",{"clientId":"nope"}]');
    f.client.handleFrame('42["session",{"clientId":"root"}]');
    f.client.handleFrame('42/sync,5["server:ask",{}]');
    assert.deepEqual(got, [{ clientId: 'c1', epoch: 1 }]);
    assert.equal(f.client.stats.otherNamespace, 2);
    assert.equal(f.sent[f.sent.length - 1], '43/sync,5[{"fine":true},2]');
  });

  it('surfaces connect_error with its data.code and fails pending requests', () => {
    const f = fakeClient();
    f.client.connect({ token: 'bad' });
    const errs: unknown[] = [];
    f.client.request('room:join', {}, (err: unknown) => errs.push(err));
    f.client.on('connect_error', (e: unknown) => errs.push(e));
    f.open();
    f.client.handleFrame('44/sync,{"message":"JWT is malformed","data":{"code":"INVALID_TOKEN","message":"JWT is malformed"}}');
    assert.equal(f.client.state, 'error');
    assert.equal((errs[0] as { code: string }).code, 'CONNECT_ERROR');
    assert.deepEqual(errs[1], { message: 'JWT is malformed', data: { code: 'INVALID_TOKEN', message: 'JWT is malformed' } });
  });

  it('handles server disconnect, polite disconnect and simulated drops', () => {
    const a = fakeClient();
    const reasons: string[] = [];
    a.client.on('disconnect', (r: string) => reasons.push(r));
    a.open();
    a.connectAck();
    a.client.handleFrame('41/sync,');
    assert.deepEqual(reasons, ['io server disconnect']);

    const b = fakeClient();
    b.open();
    b.connectAck();
    const failed: unknown[] = [];
    b.client.request('x', {}, (err: unknown) => failed.push(err));
    b.client.disconnect();
    assert.equal(b.sent[b.sent.length - 1], '41/sync,');
    assert.equal(b.closedCount(), 1);
    assert.equal((failed[0] as { code: string }).code, 'DISCONNECTED');
    b.client.emit('after', {});
    assert.equal(b.sent[b.sent.length - 1], '41/sync,', 'nothing is written after close');

    const c = fakeClient();
    c.open();
    c.connectAck();
    c.client.drop();
    assert.ok(!c.sent.includes('41/sync,'), 'a drop sends no socket.io disconnect');
    assert.equal(c.closedCount(), 1);
    assert.equal(c.client.closeReason, 'transport close');
  });

  it('tracks seqs: join base, own publish acks, gaps, duplicates, lastSeq for reconnect', () => {
    const f = fakeClient();
    f.open();
    f.connectAck();
    const statuses: string[] = [];
    f.client.on('sequenced', (_n: string, _p: unknown, s: string) => statuses.push(s));
    f.client.join({ roomCode: 'ABCD2345', guestName: 'g' }, () => undefined);
    f.client.handleFrame('43/sync,0[{"ok":true,"data":{"room":{"id":"r1"},"participants":[],"playback":{},"seq":10,"serverTimestamp":1,"self":{}}}]');
    assert.equal(f.client.seq.last('r1'), 10);
    f.client.handleFrame('42/sync,["room:event",{"roomId":"r1","seq":11,"type":"t","data":1,"from":"x","ts":1}]');
    f.client.handleFrame('42/sync,["room:presence",{"roomId":"r1","seq":13,"returned":[],"away":[]}]');
    assert.equal(f.client.seq.last('r1'), 11);
    assert.deepEqual(f.client.seq.missing('r1', 13), [12]);
    f.client.publish('r1', 't', {}, () => undefined, 'fixed-id');
    assert.match(f.sent[f.sent.length - 1]!, /^42\/sync,1\["room:publish",\{"type":"t","data":\{\},"clientMsgId":"fixed-id","roomId":"r1"\}\]$/);
    f.client.handleFrame('43/sync,1[{"ok":true,"data":{"seq":12,"duplicate":false}}]');
    assert.equal(f.client.seq.last('r1'), 13);
    f.client.handleFrame('42/sync,["room:event",{"roomId":"r1","seq":11,"type":"t","data":1,"from":"x","ts":1}]');
    f.client.handleFrame('42/sync,["room:event",{"roomId":"r1","seq":9,"type":"t","data":1,"from":"x","ts":1}]');
    assert.deepEqual(statuses, ['new', 'new', 'duplicate', 'old']);
    assert.equal(f.client.stats.duplicates, 1);
    assert.deepEqual(f.client.seq.lastSeqMap(), { r1: 13 });
    // rejoin uses the tracked lastSeq; a snapshot (recovered:false) rebases.
    f.client.rejoin('r1', () => undefined);
    assert.match(f.sent[f.sent.length - 1]!, /"room:rejoin",\{"roomId":"r1","lastSeq":13\}/);
    f.client.handleFrame('42/sync,["room:state_snapshot",{"room":{"id":"r1"},"participants":[],"playback":{},"seq":40,"serverTimestamp":1,"recovered":false}]');
    assert.equal(f.client.seq.last('r1'), 40);
  });

  it('pages room:catchup until more=false', () => {
    const f = fakeClient();
    f.open();
    f.connectAck();
    f.client.seq.base('r1', 5);
    let result: { pages: number; newEvents: number } | undefined;
    f.client.catchup('r1', (err: unknown, r: { pages: number; newEvents: number }) => {
      assert.equal(err, null);
      result = r;
    });
    assert.match(f.sent[f.sent.length - 1]!, /^42\/sync,0\["room:catchup",\{"roomId":"r1","fromSeq":5\}\]$/);
    f.client.handleFrame('43/sync,0[{"ok":true,"data":{"roomId":"r1","events":[{"seq":6,"name":"room:event","payload":{},"ts":1},{"seq":7,"name":"room:event","payload":{},"ts":1}],"seq":9,"recovered":true,"more":true}}]');
    assert.match(f.sent[f.sent.length - 1]!, /"fromSeq":7/);
    f.client.handleFrame('43/sync,1[{"ok":true,"data":{"roomId":"r1","events":[{"seq":8,"name":"room:event","payload":{},"ts":1},{"seq":9,"name":"room:event","payload":{},"ts":1}],"seq":9,"recovered":true,"more":false}}]');
    assert.deepEqual({ pages: result!.pages, newEvents: result!.newEvents }, { pages: 2, newEvents: 4 });
    assert.equal(f.client.seq.last('r1'), 9);
  });

  it('counts protocol errors instead of throwing on garbage', () => {
    const f = fakeClient();
    const errors: unknown[] = [];
    f.client.on('error', (e: unknown) => errors.push(e));
    f.open();
    f.client.handleFrame('9zz');
    f.client.handleFrame('42/sync,{oops');
    f.client.handleFrame('451-/sync,["x",{"_placeholder":true,"num":0}]');
    assert.equal(f.client.stats.protocolErrors, 3);
    assert.equal(errors.length, 3);
  });
});

describe('SeqTracker', () => {
  it('advances contiguously across out-of-order arrival and ignores seqs below the base', () => {
    const t = new SeqTracker();
    assert.equal(t.last('r'), null);
    t.observe('r', 3, true); // before any base: held, not contiguous yet
    t.base('r', 1);
    assert.equal(t.last('r'), 1);
    t.observe('r', 2, true);
    assert.equal(t.last('r'), 3);
    assert.equal(t.observe('r', 1, true), 'old');
    assert.equal(t.observe('r', 2, true), 'duplicate');
    assert.equal(t.highest('r'), 3);
    assert.deepEqual(t.missing('r', 6), [4, 5, 6]);
    assert.equal(t.duplicates('r'), 1);
  });
});

describe('HS256 JWT signing (k6-side, pure)', () => {
  const hmac = (secret: string, data: string) => createHmac('sha256', secret).update(data).digest('base64url');

  it('encodes UTF-8 and base64url like Node', () => {
    for (const s of ['', 'a', 'ab', 'abc', 'Zoë ✓ 𝄞', '\u{1F600}x']) {
      assert.deepEqual(utf8Bytes(s), [...Buffer.from(s, 'utf8')]);
      assert.equal(base64UrlString(s), Buffer.from(s, 'utf8').toString('base64url'));
    }
  });

  it('produces a token jose verifies, with iat/exp', async () => {
    const secret = 'test-secret-0123456789abcdef';
    const token = signJwt({ sub: 'k6-user-1', name: 'Zoë' }, secret, hmac, { nowSeconds: Math.floor(Date.now() / 1000), ttlSeconds: 60 });
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(secret));
    assert.equal(protectedHeader.alg, 'HS256');
    assert.equal(payload.sub, 'k6-user-1');
    assert.equal(payload.name, 'Zoë');
    assert.equal((payload.exp as number) - (payload.iat as number), 60);
    await assert.rejects(jwtVerify(token, new TextEncoder().encode('another-secret-0123456789')));
    assert.throws(() => signJwt({ sub: 'x' }, '', hmac), /empty secret/);
  });

  it('randomId fits the ClientId / ClientMsgId patterns', () => {
    const id = randomId('k6-12-', 20);
    assert.match(id, /^[A-Za-z0-9_-]{8,64}$/);
  });
});

describe('interop with a real socket.io server on /sync', () => {
  let http: HttpServer;
  let io: Server;
  let url: string;

  before(async () => {
    http = createServer();
    io = new Server(http, { pingInterval: 100, pingTimeout: 500 });
    const nsp = io.of('/sync');
    nsp.use((socket, next) => {
      if (socket.handshake.auth.token === 'bad') {
        const e = new Error('JWT is malformed') as Error & { data?: unknown };
        e.data = { code: 'INVALID_TOKEN', message: 'JWT is malformed' };
        return next(e);
      }
      next();
    });
    nsp.on('connection', (socket) => {
      socket.emit('session', { clientId: socket.handshake.auth.clientId, epoch: 1 });
      socket.on('echo', (payload: unknown, ack: (r: unknown) => void) => ack({ ok: true, data: payload }));
      socket.on('bye', () => socket.disconnect(true));
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = engineUrl(`http://127.0.0.1:${(http.address() as AddressInfo).port}`);
  });

  after(async () => {
    io.close();
    await new Promise<void>((r) => http.close(() => r()));
  });

  /** Our client over a real websocket (the `ws` package), resolved when the websocket closes. */
  function run(auth: object, script: (c: InstanceType<typeof SocketIOClient>, done: () => void) => void): Promise<InstanceType<typeof SocketIOClient>> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const c = new SocketIOClient({ send: (f: string) => ws.send(f), close: () => ws.close(), ackTimeoutMs: 2000 });
      const timer = setInterval(() => c.tick(), 50);
      const guard = setTimeout(() => {
        ws.terminate();
        reject(new Error('interop scenario timed out'));
      }, 5000);
      ws.on('message', (d) => c.handleFrame(d.toString()));
      ws.on('close', (code) => {
        clearInterval(timer);
        clearTimeout(guard);
        c.handleTransportClose(code);
        resolve(c);
      });
      ws.on('error', reject);
      c.connect(auth);
      script(c, () => c.disconnect());
    });
  }

  it('connects with auth, receives an event, gets acks and answers server pings', async () => {
    let session: unknown;
    let echoed: unknown;
    const c = await run({ clientId: 'interop-1' }, (c, done) => {
      c.on('session', (s: unknown) => {
        session = s;
        c.request('echo', { n: 1, s: 'ü' }, (err: unknown, data: unknown) => {
          assert.equal(err, null);
          echoed = data;
          // stay long enough for several 100 ms pings
          setTimeout(done, 450);
        });
      });
    });
    assert.deepEqual(session, { clientId: 'interop-1', epoch: 1 });
    assert.deepEqual(echoed, { n: 1, s: 'ü' });
    assert.ok(c.stats.pings >= 3, `pings answered: ${c.stats.pings}`);
    assert.equal(c.stats.protocolErrors, 0);
    assert.equal(c.closeReason, 'io client disconnect');
  });

  it('gets connect_error data from a refusing middleware', async () => {
    let err: { message: string; data: { code: string } } | undefined;
    await run({ token: 'bad' }, (c) => {
      c.on('connect_error', (e: typeof err) => {
        err = e;
        c.drop();
      });
    });
    assert.equal(err?.message, 'JWT is malformed');
    assert.equal(err?.data.code, 'INVALID_TOKEN');
  });

  it('sees a server-side disconnect as io server disconnect', async () => {
    const reasons: string[] = [];
    await run({}, (c) => {
      c.on('disconnect', (r: string) => {
        reasons.push(r);
        c.drop();
      });
      c.on('session', () => c.emit('bye', {}));
    });
    assert.deepEqual(reasons, ['io server disconnect']);
  });
});

describe('Node runner: plans and thresholds', () => {
  it('parses durations', () => {
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('2'), 2000);
    assert.equal(parseDuration(undefined, 7), 7);
    assert.throws(() => parseDuration('soon'), /bad duration/);
  });

  it('maps ramping-vus stages to per-VU start/stop windows', () => {
    const plan = makePlan(
      { scenarios: { ramp: { executor: 'ramping-vus', stages: [{ duration: '10s', target: 10 }, { duration: '10s', target: 10 }, { duration: '10s', target: 0 }], gracefulRampDown: '5s' } } },
      { vus: null, duration: null, iterations: null },
    );
    assert.equal(plan.vuPlans.length, 10);
    assert.ok(Math.abs(plan.vuPlans[0].startMs - 1000) <= 20, `VU1 starts at ~1s: ${plan.vuPlans[0].startMs}`);
    assert.ok(Math.abs(plan.vuPlans[9].startMs - 10_000) <= 20);
    assert.ok(Math.abs(plan.vuPlans[9].stopMs - 20_000) <= 20, 'the last VU stops first on ramp-down');
    assert.ok(plan.vuPlans[0].stopMs >= 29_000);
    assert.equal(plan.vuPlans[9].hardMs, plan.vuPlans[9].stopMs + 5000);
  });

  it('uses per-vu-iterations as given and CLI flags as k6 does', () => {
    const p = makePlan({ scenarios: { s: { executor: 'per-vu-iterations', vus: 3, iterations: 2, maxDuration: '20s' } } }, { vus: null, duration: null, iterations: null });
    assert.deepEqual(p.vuPlans[2], { startMs: 0, stopMs: 20_000, hardMs: 20_000, iterations: 2 });
    const q = makePlan({ scenarios: { s: { executor: 'per-vu-iterations', vus: 3 } } }, { vus: 2, duration: 5000, iterations: null });
    assert.equal(q.executor, 'constant-vus');
    assert.equal(q.vuPlans.length, 2);
    const r = makePlan({}, { vus: 2, duration: null, iterations: 5 });
    assert.equal(r.sharedTotal, 5);
  });

  it('evaluates k6 threshold expressions on aggregated metrics', () => {
    const agg = new Aggregator();
    agg.define('lat', 'trend', true);
    agg.define('ok', 'rate', false);
    agg.define('miss', 'counter', false);
    agg.add([...Array.from({ length: 100 }, (_, i) => ['lat', i + 1, null] as [string, number, null]), ['ok', 1, null], ['ok', 0, null], ['miss', 0, null]]);
    assert.equal(evalThreshold('p(95)<100', agg.values('lat', 1)).ok, true);
    assert.equal(evalThreshold('p(99) < 99', agg.values('lat', 1)).ok, false);
    assert.equal(evalThreshold('avg==50.5', agg.values('lat', 1)).ok, true);
    assert.equal(evalThreshold('rate>0.99', agg.values('ok', 1)).ok, false);
    assert.equal(evalThreshold('rate>=0.5', agg.values('ok', 1)).ok, true);
    assert.equal(evalThreshold('count==0', agg.values('miss', 1)).ok, true);
    assert.equal(evalThreshold('count==0', agg.values('never', 1)).ok, true, 'no samples evaluates the empty sink');
    assert.throws(() => evalThreshold('p95 < 3', agg.values('lat', 1)), /unsupported threshold/);
  });
});

describe('the k6 library speaks the protocol package', () => {
  it('every event name in the k6 scripts and library is a request or a server event of @tether/protocol', () => {
    const known = new Set<string>([...REQUEST_EVENTS, ...SERVER_EVENTS]);
    const dir = new URL('../../load-tests/k6/', import.meta.url);
    const files = [...readdirSync(dir).filter((f) => f.endsWith('.js')), ...readdirSync(new URL('lib/', dir)).map((f) => `lib/${f}`)];
    const used = new Map<string, string>();
    for (const f of files) {
      const src = readFileSync(new URL(f, dir), 'utf8');
      for (const m of src.matchAll(/['"]((?:room|session|sync|user|playback|server|inbox)(?::[a-z_]+)+|session)['"]/g)) used.set(m[1]!, f);
    }
    // The library handles the whole surface it drives: joins, resumes, publishes, syncs, playback.
    for (const name of ['room:join', 'room:rejoin', 'room:publish', 'room:event', 'session', 'sync:ping']) assert.ok(used.has(name), `k6 library does not use ${name}`);
    const unknown = [...used].filter(([name]) => !known.has(name));
    assert.deepEqual(unknown, [], 'event names the protocol does not define (a rename left behind)');
  });
});

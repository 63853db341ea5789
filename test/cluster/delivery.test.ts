/**
 * Issue #4: the delivery checker. Raw socket.io-client clients in several rooms across workers,
 * concurrent publishers (socket and HTTP) on different workers, clients cut off at the network
 * level again and again (TCP resets and blackholes through a proxy), a worker SIGKILLed and
 * restarted on the same port. Afterwards every client, after filling from its last contiguous
 * seq with room:catchup (what the SDK does), must hold every seq after its join exactly as the
 * room's log has it. No timing assertions: waits are bounded polls.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { startWorker, startWorkers, type Worker } from '../helpers/workers.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { closeAll, connect, createRoomHttp, ok, publishHttp, request, until, type TestSocket } from '../helpers/clients.ts';
import { SEQUENCED_EVENTS, type LogEntry, type SessionPayload } from '@tether/protocol';

const SEQUENCED = new Set<string>(SEQUENCED_EVENTS);

/** Long grace so a frozen client is never evicted mid-run; small pages so `more` paging runs. */
const ENV = { GRACE_PERIOD_MS: '20000', PUBLISH_RATE_PER_SEC: '100000', PUBLISH_BURST: '100000', CATCHUP_PAGE_SIZE: '20' };

let redis: TestRedis;
let a: Worker;
let b: Worker;
const extra: Worker[] = [];

before(async () => {
  redis = await startRedis();
  [a, b] = await startWorkers(2, { redisUrl: redis.url, prefix: redis.prefix, env: ENV });
});
after(async () => {
  closeAll();
  await Promise.all([a, b, ...extra].map((w) => w?.kill('SIGKILL')));
  await redis?.stop();
});

type Received = { name: string; payload: { roomId: string; seq: number } & Record<string, unknown>; via: 'live' | 'catchup' };

/** Reads a room's whole log (paging) through a member socket. */
async function readLog(socket: TestSocket, roomId: string, fromSeq = 0): Promise<{ events: LogEntry[]; seq: number; recovered: boolean }> {
  const events: LogEntry[] = [];
  let from = fromSeq;
  for (;;) {
    const page = await ok(socket, 'room:catchup', { roomId, fromSeq: from });
    if (!page.recovered) return { events, seq: page.seq, recovered: false };
    events.push(...page.events);
    if (!page.more || page.events.length === 0) return { events, seq: page.seq, recovered: true };
    from = page.events[page.events.length - 1]!.seq;
  }
}

/**
 * A client that keeps its identity (clientId + sessionToken) and everything it received across
 * socket incarnations, and reconnects + rejoins from its last contiguous seq whenever the socket
 * drops.
 */
class Member {
  socket!: TestSocket;
  session!: SessionPayload;
  joinSeq = 0;
  readonly got: Received[] = [];
  readonly snapshots: { recovered: boolean; seq: number }[] = [];
  rejoins = { recovered: 0, snapshot: 0, replayed: 0, paged: 0 };
  private reconnecting: Promise<void> | null = null;
  stopped = false;

  constructor(
    readonly name: string,
    readonly roomId: string,
    private readonly entry: () => string,
  ) {}

  async start(roomCode: string): Promise<void> {
    const c = await connect(this.entry());
    this.session = c.session;
    this.attach(c.socket);
    const joined = await ok(c.socket, 'room:join', { roomCode, guestName: this.name });
    this.joinSeq = joined.seq;
  }

  private attach(socket: TestSocket): void {
    this.socket = socket;
    socket.onAny((name: string, payload: Received['payload'] & { recovered?: boolean }) => {
      if (SEQUENCED.has(name) && payload?.roomId === this.roomId) this.got.push({ name, payload, via: 'live' });
      if (name === 'room:state_snapshot') this.snapshots.push({ recovered: payload.recovered!, seq: payload.seq });
    });
    socket.on('disconnect', () => {
      if (!this.stopped) void this.reconnect();
    });
  }

  /** Highest seq such that every seq in (joinSeq, seq] was received. */
  contiguous(): number {
    const have = new Set(this.got.map((e) => e.payload.seq));
    let s = this.joinSeq;
    while (have.has(s + 1)) s++;
    return s;
  }

  reconnect(): Promise<void> {
    this.reconnecting ??= (async () => {
      const deadline = Date.now() + 20_000;
      while (!this.stopped) {
        if (Date.now() > deadline) throw new Error(`${this.name}: could not reconnect`);
        try {
          const c = await connect(this.entry(), { auth: { clientId: this.session.clientId, sessionToken: this.session.sessionToken } });
          this.attach(c.socket);
          const res = await ok(c.socket, 'room:rejoin', { roomId: this.roomId, lastSeq: this.contiguous() });
          if (res.recovered) {
            this.rejoins.recovered++;
            this.rejoins.replayed += res.replayed;
            if (res.more) {
              this.rejoins.paged++;
              await this.fill(res.seq);
            }
          } else this.rejoins.snapshot++;
          return;
        } catch (err) {
          if (process.env.DEBUG_DELIVERY) console.error(this.name, (err as Error).message);
          await sleep(100); // worker down, proxy frozen, or socket dropped mid-rejoin: try again
        }
      }
    })().finally(() => (this.reconnecting = null));
    return this.reconnecting;
  }

  /** Highest seq received at all. */
  last(): number {
    return Math.max(this.joinSeq, ...this.got.map((e) => e.payload.seq));
  }

  /**
   * room:catchup until nothing is left, from the last contiguous seq (what the SDK does on a gap)
   * or, with `fromLast`, from the highest seq received (so holes below it stay visible).
   */
  async fill(upTo?: number, fromLast = false): Promise<void> {
    let start = fromLast ? this.last() : -1;
    for (;;) {
      const from = start >= 0 ? start : this.contiguous();
      const page = await ok(this.socket, 'room:catchup', { roomId: this.roomId, fromSeq: from });
      assert.ok(page.recovered, `${this.name}: catch-up from ${from} not recoverable`);
      for (const e of page.events) this.got.push({ name: e.name, payload: e.payload as Received['payload'], via: 'catchup' });
      if (start >= 0) start = page.events.length ? page.events[page.events.length - 1]!.seq : start;
      if (!page.more || (start < 0 && this.contiguous() >= (upTo ?? page.seq))) return;
    }
  }

  async settled(): Promise<void> {
    await until(() => this.reconnecting === null && this.socket.connected, 20_000, `${this.name} connected`);
  }
}

describe('delivery checker', () => {
  test('every client holds every seq exactly once in content, across resets, blackholes and a SIGKILLed worker', { timeout: 30_000 }, async (t) => {
    const ROOMS = 3;
    const PER_ROOM = 4;
    const SOCKET_MSGS = 40;
    const HTTP_MSGS = 15;
    const workers = () => [a, b];
    const rooms = await Promise.all(Array.from({ length: ROOMS }, (_, i) => createRoomHttp(workers()[i % 2]!.url)));

    // Receivers: each behind its own proxy, alternating workers.
    const proxies: Proxy[] = [];
    const members: Member[] = [];
    for (let r = 0; r < ROOMS; r++) {
      for (let k = 0; k < PER_ROOM; k++) {
        const target = (r + k) % 2 === 0 ? a : b;
        const proxy = await startProxy(target.port);
        proxies.push(proxy);
        const m = new Member(`r${r}c${k}`, rooms[r]!.id, () => proxy.url);
        members.push(m);
      }
    }
    try {
      for (const [i, m] of members.entries()) await m.start(rooms[Math.floor(i / PER_ROOM)]!.code);

      // Publishers: one socket member per room (on alternating workers, direct) and HTTP to both.
      const acked = new Map<string, { roomId: string; seq: number }>();
      // Publishes whose request failed mid-flight (worker killed, socket reset) and were resent:
      // the first attempt may have been appended but never broadcast; the resend is a duplicate
      // that re-broadcasts the logged original, but a resend that never happens (the test ends)
      // leaves a hole. Only these may be holes that clients fill by asking (room:catchup on a
      // gap, as the SDK does); every other event must arrive by broadcast or rejoin replay.
      const retried = new Set<string>();
      const socketPublisher = async (r: number) => {
        const room = rooms[r]!;
        let url = workers()[r % 2]!.url;
        let c = await connect(url);
        await ok(c.socket, 'room:join', { roomCode: room.code, guestName: `pub${r}` });
        const session = c.session;
        for (let n = 0; n < SOCKET_MSGS; n++) {
          const tag = `s${r}-${n}`;
          for (let attempt = 0; ; attempt++) {
            assert.ok(attempt < 100, `${tag} never published`);
            try {
              if (!c.socket.connected) throw new Error('down');
              const res = await request(c.socket, 'room:publish', { roomId: room.id, type: 'chat', data: { tag }, clientMsgId: tag }, 2000);
              if (!res.ok) throw new Error(res.error.code);
              acked.set(tag, { roomId: room.id, seq: res.data.seq });
              await sleep(60); // spread the run so the chaos overlaps it
              break;
            } catch {
              retried.add(tag);
              // Resend with the same clientMsgId after reconnecting, to whichever worker is up.
              c.socket.close();
              await sleep(100);
              url = attempt % 2 ? a.url : b.url;
              try {
                c = await connect(url, { auth: { clientId: session.clientId, sessionToken: session.sessionToken } });
                await ok(c.socket, 'room:rejoin', { roomId: room.id });
              } catch {
                // next attempt
              }
            }
          }
        }
        c.socket.close();
      };
      const httpPublisher = async (r: number) => {
        const room = rooms[r]!;
        for (let n = 0; n < HTTP_MSGS; n++) {
          const tag = `h${r}-${n}`;
          for (let attempt = 0; ; attempt++) {
            assert.ok(attempt < 100, `${tag} never published`);
            try {
              const res = await publishHttp(workers()[(n + attempt) % 2]!.url, room.id, { type: 'notice', data: { tag }, idempotencyKey: tag });
              if (res.status !== 201 && res.status !== 200) throw new Error(String(res.status));
              const body = (await res.json()) as { seq: number };
              acked.set(tag, { roomId: room.id, seq: body.seq });
              await sleep(200);
              break;
            } catch {
              retried.add(tag);
              await sleep(100);
            }
          }
        }
      };

      // Chaos: resets and blackholes under random receivers, and one SIGKILL + restart of b.
      let chaosOn = true;
      const faults = { cut: 0, freeze: 0 };
      const frozen = new Set<number>();
      const thawing: Promise<void>[] = [];
      const chaos = (async () => {
        let i = 0;
        while (chaosOn) {
          const victim = Math.floor(Math.random() * proxies.length);
          const proxy = proxies[victim]!;
          const m = members[victim]!;
          if (frozen.has(victim)) {
            await sleep(10);
            continue;
          }
          if (i++ % 3 === 2 && m.socket.connected) {
            // Blackholed: only the client's ping timeout notices; thaw once it has, so it can come
            // back. Runs beside the loop so resets keep coming meanwhile.
            proxy.freeze();
            frozen.add(victim);
            faults.freeze++;
            thawing.push(
              until(() => !m.socket.connected, 10_000, 'frozen client notices')
                .catch(() => undefined)
                .then(() => {
                  proxy.thaw();
                  frozen.delete(victim);
                }),
            );
          } else {
            proxy.cut();
            faults.cut++;
          }
          await sleep(150 + Math.random() * 250);
        }
        await Promise.all(thawing);
      })();
      const killer = (async () => {
        await sleep(1500);
        const port = b.port;
        await b.kill('SIGKILL');
        await sleep(300);
        b = await startWorker({ redisUrl: redis.url, prefix: redis.prefix, nodeId: b.nodeId, port, env: ENV });
      })();

      await Promise.all([...rooms.map((_, r) => socketPublisher(r)), ...rooms.map((_, r) => httpPublisher(r)), killer]);
      chaosOn = false;
      await chaos;
      for (const p of proxies) p.thaw();
      for (const m of members) await m.settled();
      for (const m of members) m.stopped = true;

      // The log per room, from 0, through any member.
      let totalRejoins = 0;
      const stats = { rooms: [] as number[], replayed: 0, paged: 0, holes: 0, retried: 0 };
      for (let r = 0; r < ROOMS; r++) {
        const roomId = rooms[r]!.id;
        const inRoom = members.filter((m) => m.roomId === roomId);
        const log = await readLog(inRoom[0]!.socket, roomId);
        assert.ok(log.recovered, 'log reaches back to 0 within retention');
        const N = log.seq;
        assert.deepEqual(log.events.map((e) => e.seq), Array.from({ length: N }, (_, i) => i + 1), `room ${r}: log holds 1..N contiguous`);
        const bySeq = new Map(log.events.map((e) => [e.seq, e]));

        // Every acknowledged publish is in the log once, at its acked seq, with its content.
        const tags = log.events.filter((e) => e.name === 'room:event').map((e) => (e.payload as { data: { tag: string } }).data.tag);
        assert.equal(new Set(tags).size, tags.length, `room ${r}: a resend was appended twice`);
        for (const [tag, { roomId: rid, seq }] of acked) {
          if (rid !== roomId) continue;
          const e = bySeq.get(seq);
          assert.ok(e && e.name === 'room:event' && (e.payload as { data: { tag: string } }).data.tag === tag, `room ${r}: ${tag} acked with seq ${seq} but the log has ${JSON.stringify(e)}`);
        }
        assert.equal(tags.length, SOCKET_MSGS + HTTP_MSGS, `room ${r}: every publish in the log`);

        stats.rooms.push(N);
        for (const m of inRoom) {
          // As the brief's checker: catch up from the last seq received; what is still missing below
          // it was lost by the server unless its publish was cut off mid-flight.
          await m.fill(N, true);
          const held = new Set(m.got.map((e) => e.payload.seq));
          for (let s = m.joinSeq + 1; s <= N; s++) {
            if (held.has(s)) continue;
            const e = bySeq.get(s)!;
            const tag = e.name === 'room:event' ? (e.payload as { data: { tag: string } }).data.tag : null;
            assert.ok(tag && retried.has(tag), `${m.name}: seq ${s} (${e.name} ${tag ?? ''}) was neither delivered live nor replayed on rejoin`);
            stats.holes++;
          }
          await m.fill(N);
          stats.replayed += m.rejoins.replayed;
          stats.paged += m.rejoins.paged;
          totalRejoins += m.rejoins.recovered + m.rejoins.snapshot;
          assert.equal(m.rejoins.snapshot, 0, `${m.name}: a rejoin within retention fell back to a snapshot`);
          assert.deepEqual(m.snapshots.filter((s) => !s.recovered), [], `${m.name}: unexpected recovered:false snapshot`);
          const seqs = new Set(m.got.map((e) => e.payload.seq));
          const missing: number[] = [];
          for (let s = m.joinSeq + 1; s <= N; s++) if (!seqs.has(s)) missing.push(s);
          assert.deepEqual(missing, [], `${m.name}: missing seqs after catch-up`);
          // Same seq twice is fine (live + replay); different content is not. Content = the log's.
          for (const e of m.got) {
            const logged = bySeq.get(e.payload.seq);
            if (!logged) {
              assert.ok(e.payload.seq > N, `${m.name}: seq ${e.payload.seq} not in the log`);
              continue;
            }
            assert.equal(e.name, logged.name, `${m.name}: seq ${e.payload.seq} name`);
            assert.deepEqual(e.payload, logged.payload, `${m.name}: seq ${e.payload.seq} (${e.via}) differs from the log`);
          }
        }
      }
      stats.retried = retried.size;
      t.diagnostic(JSON.stringify({ ...faults, rejoins: totalRejoins, ...stats }));
      assert.ok(totalRejoins >= members.length / 2, `chaos actually forced rejoins (${totalRejoins})`);
      assert.ok(stats.replayed > 0, 'rejoins replayed missed events');
    } finally {
      for (const m of members) m.stopped = true;
      await Promise.all(proxies.map((p) => p.close()));
    }
  });

  test('idempotent publish under resend: same clientMsgId → same seq, duplicate:true, one event', async () => {
    const room = await createRoomHttp(a.url);
    const observer = await connect(b.url);
    const seen: { name: string; payload: { seq: number; data?: unknown } }[] = [];
    observer.socket.onAny((name: string, payload: { seq: number }) => seen.push({ name, payload }));
    await ok(observer.socket, 'room:join', { roomCode: room.code, guestName: 'obs' });
    const proxy = await startProxy(a.port);
    try {
      const pub = await connect(proxy.url);
      await ok(pub.socket, 'room:join', { roomCode: room.code, guestName: 'pub' });
      const results = await Promise.all(Array.from({ length: 5 }, () => ok(pub.socket, 'room:publish', { roomId: room.id, type: 'chat', data: { x: 1 }, clientMsgId: 'once' })));
      const seq = results[0]!.seq;
      assert.ok(results.every((r) => r.seq === seq), 'same seq for every resend');
      assert.equal(results.filter((r) => !r.duplicate).length, 1, 'exactly one original');

      // A reset, then the resend from another worker after reconnecting with the session.
      proxy.cut();
      const again = await connect(b.url, { auth: { clientId: pub.session.clientId, sessionToken: pub.session.sessionToken } });
      await ok(again.socket, 'room:rejoin', { roomId: room.id, lastSeq: seq });
      assert.deepEqual(await ok(again.socket, 'room:publish', { roomId: room.id, type: 'chat', data: { x: 1 }, clientMsgId: 'once' }), { seq, duplicate: true });

      // HTTP idempotency keys behave the same (201 then 200 with the original seq).
      const h1 = await publishHttp(a.url, room.id, { type: 'n', data: 1, idempotencyKey: 'k1' });
      const h2 = await publishHttp(b.url, room.id, { type: 'n', data: 1, idempotencyKey: 'k1' });
      assert.equal(h1.status, 201);
      assert.equal(h2.status, 200);
      const [b1, b2] = [(await h1.json()) as { seq: number; duplicate: boolean }, (await h2.json()) as { seq: number; duplicate: boolean }];
      assert.deepEqual(b2, { seq: b1.seq, duplicate: true });

      // Bounded wait for broadcasts: a later event's arrival proves the earlier ones had their chance.
      const last = await ok(again.socket, 'room:publish', { roomId: room.id, type: 'chat', data: 'last', clientMsgId: 'last' });
      await until(() => seen.some((e) => e.name === 'room:event' && e.payload.seq === last.seq), 5000, 'last event');
      // Broadcasts of one room can arrive out of order only across publishing workers; the last
      // was published after the others were acked, so they were all emitted before it.
      // A resend re-broadcasts the logged original (same seq, same content) in case the first
      // attempt died before broadcasting: copies are allowed, a second event is not.
      for (const s of [seq, b1.seq]) {
        const copies = seen.filter((e) => e.name === 'room:event' && e.payload.seq === s).map((e) => JSON.stringify(Object.entries(e.payload).sort()));
        assert.ok(copies.length >= 1, `seq ${s} broadcast`);
        assert.equal(new Set(copies).size, 1, `every copy of seq ${s} is the same event`);
      }
      const log = await readLog(observer.socket, room.id);
      assert.equal(log.events.filter((e) => e.name === 'room:event' && e.seq === seq).length, 1);
      assert.equal(log.events.filter((e) => e.name === 'room:event').length, 3, 'once, k1, last');
    } finally {
      await proxy.close();
    }
  });

  test('concurrent publishers across workers never share a seq: hundreds of publishes → unique, contiguous', async () => {
    const room = await createRoomHttp(a.url);
    const pubs = await Promise.all([a, b, a, b].map((w) => connect(w.url)));
    for (const [i, p] of pubs.entries()) await ok(p.socket, 'room:join', { roomCode: room.code, guestName: `p${i}` });
    const PER = 60;
    const socketSeqs = pubs.flatMap((p, i) =>
      Array.from({ length: PER }, (_, n) => ok(p.socket, 'room:publish', { roomId: room.id, type: 'c', data: { i, n }, clientMsgId: `p${i}-${n}` }).then((r) => r.seq)),
    );
    const httpSeqs = Array.from({ length: 60 }, (_, n) =>
      publishHttp((n % 2 ? a : b).url, room.id, { type: 'h', data: { n } }).then(async (r) => ((await r.json()) as { seq: number }).seq),
    );
    const seqs = await Promise.all([...socketSeqs, ...httpSeqs]);
    assert.equal(new Set(seqs).size, seqs.length, 'no two publishes share a seq');
    const log = await readLog(pubs[0]!.socket, room.id);
    assert.deepEqual(log.events.map((e) => e.seq), Array.from({ length: log.seq }, (_, i) => i + 1), 'log contiguous 1..N');
    const events = log.events.filter((e) => e.name === 'room:event');
    assert.equal(events.length, seqs.length);
    assert.deepEqual(events.map((e) => e.seq).sort((x, y) => x - y), [...seqs].sort((x, y) => x - y), 'acked seqs are exactly the logged events');
  });

  test('a client kept away past retention gets recovered:false and a correct snapshot', async () => {
    const prefix = `${redis.prefix}r`;
    const pair = await startWorkers(2, { redisUrl: redis.url, prefix, nodeId: 'ret', env: { ...ENV, CATCHUP_MAX_EVENTS: '10' } });
    extra.push(...pair);
    const [x, y] = pair as [Worker, Worker];
    const room = await createRoomHttp(x.url);
    const stay = await connect(y.url);
    await ok(stay.socket, 'room:join', { roomCode: room.code, guestName: 'stay' });
    const proxy = await startProxy(x.port);
    try {
      const away = await connect(proxy.url);
      const joined = await ok(away.socket, 'room:join', { roomCode: room.code, guestName: 'away' });
      proxy.cut();
      let last = 0;
      for (let n = 0; n < 25; n++) {
        const res = await publishHttp(n % 2 ? x.url : y.url, room.id, { type: 't', data: n });
        last = ((await res.json()) as { seq: number }).seq;
      }
      const back = await connect(y.url, { auth: { clientId: away.session.clientId, sessionToken: away.session.sessionToken } });
      const snaps: { recovered: boolean; seq: number; participants: { clientId: string; status: string }[]; room: { id: string } }[] = [];
      back.socket.on('room:state_snapshot', (s) => snaps.push(s as never));
      const res = await ok(back.socket, 'room:rejoin', { roomId: room.id, lastSeq: joined.seq });
      assert.equal(res.recovered, false);
      assert.equal(res.replayed, 0);
      assert.equal(snaps.length, 1, 'snapshot sent before the ack');
      const snap = snaps[0]!;
      assert.equal(snap.recovered, false);
      assert.equal(snap.room.id, room.id);
      assert.ok(snap.seq >= last, 'snapshot at or after the last publish');
      assert.equal(res.seq, snap.seq);
      const ids = snap.participants.map((p) => p.clientId).sort();
      assert.deepEqual(ids, [stay.session.clientId, away.session.clientId].sort(), 'both participants');
      assert.equal(snap.participants.find((p) => p.clientId === away.session.clientId)!.status, 'online');
      // From the snapshot's seq on, the log is complete again.
      const after = await ok(back.socket, 'room:catchup', { roomId: room.id, fromSeq: snap.seq });
      assert.equal(after.recovered, true);
      assert.deepEqual(after.events.filter((e) => e.seq <= snap.seq), []);
      const old = await ok(back.socket, 'room:catchup', { roomId: room.id, fromSeq: joined.seq });
      assert.equal(old.recovered, false, 'the trimmed range is reported, not silently skipped');
      const publish = await publishHttp(x.url, room.id, { type: 't', data: 'after' });
      const seqAfter = ((await publish.json()) as { seq: number }).seq;
      const recent = await ok(back.socket, 'room:catchup', { roomId: room.id, fromSeq: snap.seq });
      assert.ok(recent.events.some((e) => e.seq === seqAfter), 'new events after the snapshot are in the log');
    } finally {
      await proxy.close();
    }
  });
});

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TetherError, type ErrorCode } from '@tether/protocol';
import { metrics, timeRedis } from '../observability/metrics.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisCommands, RedisNodeCommands } from './client.js';
import type { ScriptBroadcast } from '../fanout/port.js';

/**
 * Lua scripts live in ./scripts/<name>-<numberOfKeys>.lua (BullMQ's convention). `--@include x`
 * inlines ./scripts/includes/x.lua, so helpers such as append_event exist once. Scripts are read
 * and hashed once at start; calls use EVALSHA and fall back to EVAL when Redis has not seen the
 * script (a restarted or failed-over Redis forgets its script cache).
 *
 * On a Redis Cluster a call is routed by its first key, and every key of a Tether script carries
 * the same hash tag, so it runs on the one master owning that slot. Script caches are per node: a
 * script preloaded on one master is unknown to another, to a replica promoted after a failover and
 * to the new owner of a migrated slot. The NOSCRIPT fallback needs nothing more for that: EVAL is
 * routed by the same first key, so it reaches (and loads the script into) exactly the master that
 * said NOSCRIPT.
 */

/** Negative script return codes, mapped to the error catalogue in one place. */
export const SCRIPT_ERRORS: Record<number, ErrorCode | 'STALE'> = {
  [-1]: 'ROOM_NOT_FOUND',
  [-2]: 'ROOM_FULL',
  [-3]: 'NOT_IN_ROOM',
  [-4]: 'ALREADY_IN_ROOM',
  [-5]: 'STALE',
  [-6]: 'SESSION_INVALID',
  [-7]: 'UNAUTHORIZED',
  [-8]: 'RATE_LIMITED',
};

/**
 * Every script, with the number of keys it takes: the loader refuses to start when a file and this
 * registry disagree (a missing, extra or renamed script), so a typo in a name fails at compile time
 * and a script added without its entry fails at start, not on its first call.
 */
export const SCRIPT_KEYS = {
  catchup: 2,
  createRoom: 7,
  deleteRoom: 13,
  dueAway: 2,
  flushPresence: 8,
  inboxAck: 1,
  inboxConnect: 3,
  inboxDisconnect: 1,
  inboxPending: 1,
  inboxPush: 2,
  joinRoom: 9,
  leaveRoom: 9,
  markAway: 8,
  nodeConnRemove: 1,
  playbackCommand: 7,
  playbackGrant: 7,
  playbackReport: 6,
  playbackSync: 6,
  publish: 11,
  rejoin: 9,
  sessionClaimRoom: 1,
  sessionClearRoom: 1,
  sessionConnect: 2,
  sessionDisconnect: 1,
  snapshot: 6,
  userOffline: 3,
} as const;
export type ScriptName = keyof typeof SCRIPT_KEYS;

/**
 * Trailing KEYS a script may be called without (documented in the script): a key of another slot
 * that a Redis Cluster cannot pass to it, written by the caller instead.
 */
const OPTIONAL_KEYS: Partial<Record<ScriptName, number>> = { sessionConnect: 1 };

interface Script {
  name: string;
  numberOfKeys: number;
  source: string;
  sha: string;
}

const scriptsDir = fileURLToPath(new URL('./scripts/', import.meta.url));

function loadScripts(): Map<ScriptName, Script> {
  const includes = new Map<string, string>();
  for (const file of readdirSync(`${scriptsDir}includes`)) {
    includes.set(file.replace(/\.lua$/, ''), readFileSync(`${scriptsDir}includes/${file}`, 'utf8'));
  }
  const scripts = new Map<ScriptName, Script>();
  for (const file of readdirSync(scriptsDir)) {
    const m = /^([A-Za-z]+)-(\d+)\.lua$/.exec(file);
    if (!m) continue;
    const name = m[1]! as ScriptName;
    if (SCRIPT_KEYS[name] !== Number(m[2])) throw new Error(`${file}: not in SCRIPT_KEYS with ${m[2]} keys (src/redis/scripts.ts)`);
    const source = readFileSync(`${scriptsDir}${file}`, 'utf8').replace(/^--@include (\w+)$/gm, (_, name: string) => {
      const body = includes.get(name);
      if (body === undefined) throw new Error(`${file}: unknown include ${name}`);
      return body;
    });
    scripts.set(name, { name, numberOfKeys: Number(m[2]), source, sha: createHash('sha1').update(source).digest('hex') });
  }
  for (const name of Object.keys(SCRIPT_KEYS) as ScriptName[]) if (!scripts.has(name)) throw new Error(`script ${name} has no file in ${scriptsDir}`);
  return scripts;
}


export type ScriptReply = number | string | null | ScriptReply[];

/** The three ARGVs (channel head tail) of a script that broadcasts what it appends ('' = it does not). */
export function broadcastArgs(b: ScriptBroadcast | null): [string, string, string] {
  return b ? [b.channel, b.head, b.tail] : ['', '', ''];
}

/**
 * While a slot migrates, a multi-key command whose keys are split between the two masters (or not
 * all created yet: a room's pending set) is answered TRYAGAIN instead of being run; it is safe to
 * send again, and the migration of one slot takes milliseconds to seconds.
 */
const TRYAGAIN_DELAYS_MS = [5, 10, 20, 40, 80, 160, 250, 250, 250, 500, 500, 1000, 1000, 1000, 1000];

/** Scripts that only read: nothing to replicate before their reply is used. */
const READ_ONLY: ReadonlySet<ScriptName> = new Set<ScriptName>(['catchup', 'snapshot']);

/**
 * Synchronous replication for acknowledged state: after a script that writes, WAIT until
 * `replicas` replicas have it (or `timeoutMs` passed) before its result is used — and so before a
 * client hears "ok". Redis replication is asynchronous; without this a master that dies right after
 * answering takes its last writes with it when Sentinel or the Cluster promotes a replica, AOF or
 * not (the old master's AOF is discarded when it rejoins as a replica).
 */
export interface Durability {
  replicas: number;
  timeoutMs: number;
  wait(firstKey: string, replicas: number, timeoutMs: number): Promise<number>;
}

export class Scripts {
  private readonly scripts = loadScripts();

  constructor(
    private readonly redis: RedisCommands,
    /** Every master of the topology (one outside a Cluster). */
    private readonly masters: () => Promise<RedisNodeCommands[]>,
    private readonly durability?: Durability,
  ) {}

  /** Preloads every script on every master so the first request of each kind does not pay for EVAL. */
  async load(): Promise<void> {
    const masters = await this.masters();
    await Promise.all(masters.flatMap((m) => [...this.scripts.values()].map((s) => m.scriptLoad(s.source))));
  }

  async run(name: ScriptName, keys: string[], args: (string | number)[]): Promise<ScriptReply[]> {
    const script = this.scripts.get(name);
    if (!script) throw new Error(`unknown script ${name}`);
    if (keys.length > script.numberOfKeys || keys.length < script.numberOfKeys - (OPTIONAL_KEYS[name] ?? 0)) throw new Error(`${name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
    const options = { keys, arguments: args.map(String) };
    const reply = await this.eval(name, script, options);
    const d = this.durability;
    if (d && d.replicas > 0 && !READ_ONLY.has(name)) {
      // On the connection that ran the script (WAIT covers that connection's writes). A WAIT that
      // fails (the master died under it) fails the request: whether the write survives is unknown,
      // and the client's resend with the same id is answered from the dedup record or appended
      // anew — never acknowledged while lost. A WAIT that times out (replicas lagging or down)
      // degrades to asynchronous replication, counted, rather than turning every write into an
      // outage while a replica is away.
      const acked = await timeRedis('wait', () => d.wait(keys[0]!, d.replicas, d.timeoutMs));
      if (acked < d.replicas) metrics.replicationWaitTimeouts.inc();
    }
    return reply;
  }

  private eval(name: ScriptName, script: Script, options: { keys: string[]; arguments: string[] }): Promise<ScriptReply[]> {
    return timeRedis(name, async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          try {
            return (await this.redis.evalSha(script.sha, options)) as ScriptReply[];
          } catch (err) {
            if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
              return (await this.redis.eval(script.source, options)) as ScriptReply[];
            }
            throw err;
          }
        } catch (err) {
          const delay = TRYAGAIN_DELAYS_MS[attempt];
          if (!(err instanceof Error && err.message.startsWith('TRYAGAIN')) || delay === undefined) throw err;
          await sleep(delay);
        }
      }
    });
  }

  /**
   * Runs a script and turns a negative status into a TetherError (or `null` for STALE, which
   * callers treat as "the world moved on, do nothing").
   */
  async call(name: ScriptName, keys: string[], args: (string | number)[]): Promise<ScriptReply[] | null> {
    const reply = await this.run(name, keys, args);
    const status = reply[0];
    if (typeof status === 'number' && status < 0) {
      const code = SCRIPT_ERRORS[status];
      if (code === 'STALE') return null;
      if (code === 'RATE_LIMITED') throw new TetherError(code, 'over the room\'s publish budget; slow down', undefined, Number(reply[1] ?? 0));
      if (code) throw new TetherError(code);
      throw new Error(`${name} returned unknown status ${status}`);
    }
    return reply;
  }
}

/** HGETALL-style flat array → object. */
export function flatToObject(flat: ScriptReply | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(flat)) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

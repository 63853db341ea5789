import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TetherError, type ErrorCode } from '@tether/protocol';
import { timeRedis } from '../observability/metrics.js';
import type { RedisCommands } from './client.js';

/**
 * Lua scripts live in ./scripts/<name>-<numberOfKeys>.lua (BullMQ's convention). `--@include x`
 * inlines ./scripts/includes/x.lua, so helpers such as append_event exist once. Scripts are read
 * and hashed once at start; calls use EVALSHA and fall back to EVAL when Redis has not seen the
 * script (a restarted or failed-over Redis forgets its script cache).
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
  deleteRoom: 12,
  flushPresence: 8,
  inboxAck: 1,
  inboxConnect: 3,
  inboxDisconnect: 1,
  inboxPending: 1,
  inboxPush: 2,
  joinRoom: 9,
  leaveRoom: 8,
  markAway: 7,
  nodeConnRemove: 1,
  playbackCommand: 7,
  playbackGrant: 7,
  playbackReport: 6,
  playbackSync: 6,
  publish: 11,
  rejoin: 8,
  sessionClaimRoom: 1,
  sessionClearRoom: 1,
  sessionConnect: 1,
  sessionDisconnect: 1,
  snapshot: 6,
  userOffline: 3,
} as const;
export type ScriptName = keyof typeof SCRIPT_KEYS;

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

export class Scripts {
  private readonly scripts = loadScripts();

  constructor(private readonly redis: RedisCommands) {}

  /** Preloads every script so the first request of each kind does not pay for EVAL. */
  async load(): Promise<void> {
    await Promise.all([...this.scripts.values()].map((s) => this.redis.scriptLoad(s.source)));
  }

  async run(name: ScriptName, keys: string[], args: (string | number)[]): Promise<ScriptReply[]> {
    const script = this.scripts.get(name);
    if (!script) throw new Error(`unknown script ${name}`);
    if (keys.length !== script.numberOfKeys) throw new Error(`${name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
    const options = { keys, arguments: args.map(String) };
    return timeRedis(name, async () => {
      try {
        return (await this.redis.evalSha(script.sha, options)) as ScriptReply[];
      } catch (err) {
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
          return (await this.redis.eval(script.source, options)) as ScriptReply[];
        }
        throw err;
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

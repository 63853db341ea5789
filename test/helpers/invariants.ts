import { Keys } from '../../src/redis/keys.ts';
import { redisClient } from './redis.ts';

/**
 * Cross-checks what Redis says about rooms, sessions and node indexes after a chaotic test — the
 * state the product promises, not what clients happened to see:
 * - every member of a room has a session that names that room (and the member's epoch is the
 *   session's epoch when the member is online);
 * - every online member's session is connected, on a node whose index lists it under that epoch;
 * - every away member is in its room's away set, which the eviction windows read;
 * - no session names a room that does not list it;
 * - no worker instance whose heartbeat is gone still indexes sockets (the reaper finished);
 * - with `liveNodes` (NODE_IDs of the workers running now), online members are on one of them.
 * Worker instances are `<NODE_ID>~<random>`: one per process, so a respawn under the same
 * NODE_ID is a new instance.
 * Returns the list of violations (empty when everything agrees).
 */
export interface InvariantReport {
  violations: string[];
  members: number;
  online: number;
  away: number;
}

export async function checkInvariants(opts: { url: string; prefix: string; rooms: string[]; clientIds?: string[]; liveNodes?: string[] }): Promise<InvariantReport> {
  const keys = new Keys(opts.prefix);
  const r = await redisClient(opts.url);
  const violations: string[] = [];
  let members = 0;
  let online = 0;
  let away = 0;
  try {
    const seen = new Set<string>();
    for (const roomId of opts.rooms) {
      const all = await r.hGetAll(keys.room(roomId).members);
      for (const [clientId, raw] of Object.entries(all)) {
        members++;
        seen.add(clientId);
        const m = JSON.parse(raw) as { status: string; epoch: number };
        if (m.status === 'online') online++;
        else away++;
        const s = await r.hGetAll(keys.session(clientId));
        if (!s.epoch) {
          violations.push(`${roomId}/${clientId}: member without a session`);
          continue;
        }
        if (s.roomId !== roomId) violations.push(`${roomId}/${clientId}: session names room ${s.roomId || '(none)'}`);
        // An away member outside the room's away set would never be evicted (nothing reads it).
        if (m.status === 'away' && (await r.zScore(keys.room(roomId).away, clientId)) === null) violations.push(`${roomId}/${clientId}: away but not in the room's away set`);
        if (m.status === 'online') {
          if (Number(s.epoch) !== Number(m.epoch)) violations.push(`${roomId}/${clientId}: online member epoch ${m.epoch} but session epoch ${s.epoch}`);
          if (s.status !== 'connected') violations.push(`${roomId}/${clientId}: online member but session ${s.status}`);
          if (opts.liveNodes && !opts.liveNodes.includes((s.nodeId ?? '').split('~')[0]!)) violations.push(`${roomId}/${clientId}: online on node ${s.nodeId}, which is not running`);
          if (!(await r.exists(keys.nodeAlive(s.nodeId ?? '')))) violations.push(`${roomId}/${clientId}: online on instance ${s.nodeId}, whose heartbeat is gone`);
          const indexed = await r.hGet(keys.nodeConnections(s.nodeId ?? ''), clientId);
          if (Number(indexed) !== Number(s.epoch)) violations.push(`${roomId}/${clientId}: node ${s.nodeId} index has epoch ${indexed} for session epoch ${s.epoch}`);
        }
      }
    }
    for (const clientId of opts.clientIds ?? []) {
      const s = await r.hGetAll(keys.session(clientId));
      if (s.roomId && opts.rooms.includes(s.roomId) && !seen.has(clientId)) violations.push(`session ${clientId} names room ${s.roomId}, which does not list it`);
    }
    for (const instance of await r.sMembers(keys.nodes())) {
      if (!(await r.exists(keys.nodeAlive(instance))) && (await r.hLen(keys.nodeConnections(instance))) > 0) violations.push(`dead instance ${instance} still indexes sockets`);
    }
  } finally {
    await r.quit();
  }
  return { violations, members, online, away };
}

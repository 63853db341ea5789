-- Deletes a room and everything of it at once (DELETE /v1/rooms/:id): the caller tells the
-- members (room:closed), takes every socket out of the room's stream and clears the members'
-- sessions. Pending jobs of the room (evictions, flushes, drift syncs) find nothing and are no-ops.
-- KEYS[1..6] the room's state keys (see room_keys in common)
-- KEYS[7] log  KEYS[8] dedup  KEYS[9] dedupAge  KEYS[10] flush  KEYS[11] publish bucket
-- Returns {1, clientId...} the members it had | {-1} no room
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('EXISTS', meta) == 0 then return {-1} end
local out = redis.call('HKEYS', members)
redis.call('DEL', meta, members, users, playback, rtt, pending, KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
table.insert(out, 1, 1)
return out

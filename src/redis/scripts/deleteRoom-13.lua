--@include common
-- Deletes a room and everything of it at once (DELETE /v1/rooms/:id): the caller tells the
-- members (room:closed), takes every socket out of the room's stream and clears the members'
-- sessions. Pending jobs of the room (evictions, flushes, drift syncs) find nothing and are no-ops.
-- KEYS[1..6] the room's state keys (see room_keys in common)
-- KEYS[7] log  KEYS[8] dedup  KEYS[9] dedupAge  KEYS[10] flush  KEYS[11] publish bucket
-- KEYS[12] webhook outbox (kept: room.deleted is in it)  KEYS[13] away
-- ARGV webhookFilter
-- Returns {1, clientId...} the members it had | {-1} no room
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('EXISTS', meta) == 0 then return {-1} end
local out = redis.call('HKEYS', members)
local m = redis.call('HMGET', meta, 'id', 'inc', 'createdAt')
hook(KEYS[12], ARGV[1], 'msg_' .. m[1] .. '_' .. room_incarnation(m[2], m[3]) .. '_deleted', 'room.deleted',
  '{"roomId":' .. cjson.encode(m[1]) .. ',"members":' .. #out .. '}')
redis.call('DEL', meta, members, users, playback, rtt, pending, KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[13])
table.insert(out, 1, 1)
return out

-- Reads a room's full state in one step so the seq it reports matches the content exactly.
-- KEYS[1..6] the room's state keys (see room_keys in common)
-- Returns {1, metaFlat, memberJsons, playbackFlat} | {-1} no room
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('EXISTS', meta) == 0 then return {-1} end
return {1, redis.call('HGETALL', meta), redis.call('HVALS', members), redis.call('HGETALL', playback)}

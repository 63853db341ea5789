-- Reads a room's full state in one step so the seq it reports matches the content exactly.
-- KEYS[1] meta  KEYS[2] members  KEYS[3] playback
-- Returns {1, metaFlat, memberJsons, playbackFlat} | {-1} no room
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
return {1, redis.call('HGETALL', KEYS[1]), redis.call('HVALS', KEYS[2]), redis.call('HGETALL', KEYS[3])}

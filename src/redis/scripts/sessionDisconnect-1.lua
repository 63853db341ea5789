-- The socket of `epoch` went away. A socket replaced by a newer connection finds the epoch moved
-- on and changes nothing: its disconnect must not evict or announce anything.
-- KEYS[1] session
-- ARGV epoch now
-- Returns {1, roomId('' = none)} | {0} stale
local s = KEYS[1]
if tonumber(redis.call('HGET', s, 'epoch')) ~= tonumber(ARGV[1]) then return {0} end
redis.call('HSET', s, 'status', 'disconnected', 'disconnectedAt', ARGV[2])
return {1, redis.call('HGET', s, 'roomId') or ''}

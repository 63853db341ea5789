-- The socket of `epoch` went away. A socket replaced by a newer connection finds the epoch moved
-- on and changes nothing: its disconnect must not evict or announce anything.
-- A session that never joined a code room keeps only a short TTL once disconnected: handshakes
-- alone (a crawler, a flood of guest connects) must not leave a session behind for SESSION_TTL_MS.
-- KEYS[1] session
-- ARGV epoch now idleTtlMs
-- Returns {1, roomId('' = none)} | {0} stale
local s = KEYS[1]
if tonumber(redis.call('HGET', s, 'epoch')) ~= tonumber(ARGV[1]) then return {0} end
redis.call('HSET', s, 'status', 'disconnected', 'disconnectedAt', ARGV[2])
if redis.call('HEXISTS', s, 'joinedAt') == 0 then redis.call('PEXPIRE', s, ARGV[3]) end
return {1, redis.call('HGET', s, 'roomId') or ''}

-- Forgets a session's code-joined room, only if the session is still in that room (and, when an
-- epoch is given, still at that epoch: a client that reconnected meanwhile keeps its room).
-- KEYS[1] session
-- ARGV roomId epoch('' = any)
-- Returns {1} cleared | {0} untouched
local s = KEYS[1]
if (redis.call('HGET', s, 'roomId') or '') ~= ARGV[1] then return {0} end
if ARGV[2] ~= '' and tonumber(redis.call('HGET', s, 'epoch')) ~= tonumber(ARGV[2]) then return {0} end
redis.call('HDEL', s, 'roomId')
return {1}

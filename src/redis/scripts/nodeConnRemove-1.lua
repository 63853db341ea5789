-- Forgets a socket in its node's connection index, unless a newer connection of the same client
-- (higher epoch, same node) has replaced the entry meanwhile.
-- KEYS[1] node connections hash
-- ARGV clientId epoch
-- Returns {1} removed | {0} untouched
if tonumber(redis.call('HGET', KEYS[1], ARGV[1])) ~= tonumber(ARGV[2]) then return {0} end
redis.call('HDEL', KEYS[1], ARGV[1])
return {1}

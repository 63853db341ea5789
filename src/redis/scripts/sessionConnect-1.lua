-- A (re)connect of clientId. An existing session must be presented with its token: knowing a
-- clientId is not enough to take over its seat. Every connect increments the epoch; delayed work
-- scheduled under an older epoch becomes a no-op.
-- KEYS[1] session
-- ARGV presentedTokenHash('' = none) newTokenHash userId(''=guest) socketId nodeId now sessionTtlMs
-- Returns {1, epoch, issued(0|1), prevSocketId, prevNodeId, prevStatus, roomId}
--         {-6} wrong or missing token  {-7} session belongs to another user
local s = KEYS[1]
local issued = 0
if redis.call('EXISTS', s) == 1 then
  if ARGV[1] == '' or ARGV[1] ~= redis.call('HGET', s, 'tokenHash') then return {-6} end
  local owner = redis.call('HGET', s, 'userId') or ''
  if owner ~= '' and owner ~= ARGV[3] then return {-7} end
else
  redis.call('HSET', s, 'tokenHash', ARGV[2], 'createdAt', ARGV[6])
  issued = 1
end
local prev = redis.call('HMGET', s, 'socketId', 'nodeId', 'status', 'roomId')
local epoch = redis.call('HINCRBY', s, 'epoch', 1)
redis.call('HSET', s, 'socketId', ARGV[4], 'nodeId', ARGV[5], 'userId', ARGV[3], 'status', 'connected', 'connectedAt', ARGV[6])
redis.call('PEXPIRE', s, ARGV[7])
return {1, epoch, issued, prev[1] or '', prev[2] or '', prev[3] or '', prev[4] or ''}

-- A (re)connect of clientId. An existing session must be presented with its token: knowing a
-- clientId is not enough to take over its seat. Every connect increments the epoch; delayed work
-- scheduled under an older epoch becomes a no-op.
-- Every session hash has its tokenHash (written here when it is created), so reading it answers
-- "does the session exist" in the same command as the previous connection's fields.
-- The connection goes into its worker instance's index (what the reaper disconnects if the
-- instance dies) in the same step: there is no moment when the session says connected here and
-- the index does not list it. On a Redis Cluster the index lives in another slot: KEYS[2] is left
-- out and the caller writes the index itself, once this returned.
-- KEYS[1] session  KEYS[2] the node instance's index (optional, see above)
-- ARGV presentedTokenHash('' = none) newTokenHash userId(''=guest) socketId nodeId sessionTtlMs clientId
-- Returns {1, epoch, issued(0|1), prevSocketId, prevNodeId, prevStatus, roomId}
--         {-6} wrong or missing token  {-7} session belongs to another user
local s = KEYS[1]
local cur = redis.call('HMGET', s, 'tokenHash', 'userId', 'socketId', 'nodeId', 'status', 'roomId')
local issued = 0
if cur[1] then
  if ARGV[1] == '' or ARGV[1] ~= cur[1] then return {-6} end
  local owner = cur[2] or ''
  if owner ~= '' and owner ~= ARGV[3] then return {-7} end
else
  issued = 1
end
local epoch = redis.call('HINCRBY', s, 'epoch', 1)
-- No connectedAt: nothing reads it (the worker keeps its connections' start), and an idle
-- connection's Redis share is what the session hash holds.
local f = {'socketId', ARGV[4], 'nodeId', ARGV[5], 'status', 'connected'}
if issued == 1 then f[#f + 1] = 'tokenHash'; f[#f + 1] = ARGV[2] end
-- A guest's session has no userId field (readers take a missing one as ''): one field less per
-- idle guest. A guest session that signs in becomes the user's (the owner check above).
if ARGV[3] ~= '' then f[#f + 1] = 'userId'; f[#f + 1] = ARGV[3] end
redis.call('HSET', s, unpack(f))
redis.call('PEXPIRE', s, ARGV[6])
if KEYS[2] then redis.call('HSET', KEYS[2], ARGV[7], epoch) end
return {1, epoch, issued, cur[3] or '', cur[4] or '', cur[5] or '', cur[6] or ''}

-- Claims the session's one code-joined room before the join is admitted, so that two joins of one
-- client to two rooms (sent back to back, or from two workers) cannot both succeed: the second
-- finds the first's claim. The caller releases the claim (sessionClearRoom) if admission fails.
-- Every session hash has an epoch (sessionConnect): no epoch, no session.
-- KEYS[1] session
-- ARGV roomId epoch now
-- Returns {1, alreadyThisRoom(1|0)} claimed | {0, otherRoomId, claimedAt} another room is claimed
--         {-5} stale (a newer connection of the client exists) | {-6} no session (expired)
local s = KEYS[1]
local cur = redis.call('HMGET', s, 'epoch', 'roomId', 'roomClaimedAt', 'joinedAt')
if not cur[1] then return {-6} end
if tonumber(cur[1]) ~= tonumber(ARGV[2]) then return {-5} end
local current = cur[2] or ''
if current ~= '' and current ~= ARGV[1] then
  return {0, current, cur[3] or '0'}
end
if cur[4] then
  redis.call('HSET', s, 'roomId', ARGV[1], 'roomClaimedAt', ARGV[3])
else
  redis.call('HSET', s, 'roomId', ARGV[1], 'roomClaimedAt', ARGV[3], 'joinedAt', ARGV[3])
end
return {1, current == ARGV[1] and 1 or 0}

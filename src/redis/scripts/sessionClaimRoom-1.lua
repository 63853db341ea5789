-- Claims the session's one code-joined room before the join is admitted, so that two joins of one
-- client to two rooms (sent back to back, or from two workers) cannot both succeed: the second
-- finds the first's claim. The caller releases the claim (sessionClearRoom) if admission fails.
-- KEYS[1] session
-- ARGV roomId epoch now
-- Returns {1, alreadyThisRoom(1|0)} claimed | {0, otherRoomId, claimedAt} another room is claimed
--         {-5} stale (a newer connection of the client exists) | {-6} no session (expired)
local s = KEYS[1]
if redis.call('EXISTS', s) == 0 then return {-6} end
if tonumber(redis.call('HGET', s, 'epoch')) ~= tonumber(ARGV[2]) then return {-5} end
local current = redis.call('HGET', s, 'roomId') or ''
if current ~= '' and current ~= ARGV[1] then
  return {0, current, redis.call('HGET', s, 'roomClaimedAt') or '0'}
end
redis.call('HSET', s, 'roomId', ARGV[1], 'roomClaimedAt', ARGV[3])
if redis.call('HEXISTS', s, 'joinedAt') == 0 then redis.call('HSET', s, 'joinedAt', ARGV[3]) end
return {1, current == ARGV[1] and 1 or 0}

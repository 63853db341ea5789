--@include common
-- Stores a member's latest RTT (already clamped by the caller) in the room's rtt hash.
-- Code rooms require membership, checked here so a report racing a leave cannot resurrect an
-- entry for a departed member; program rooms are checked against the JWT by the caller.
-- KEYS[1..6] the room's state keys (see room_keys in common)
-- ARGV clientId rttMs requireMember(1|0) roomTtlMs
-- Returns {1} | {-1} no room | {-3} not a member
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('EXISTS', meta) == 0 then return {-1} end
if ARGV[3] == '1' and redis.call('HEXISTS', members, ARGV[1]) == 0 then return {-3} end
redis.call('HSET', rtt, ARGV[1], ARGV[2])
touch_room(tonumber(ARGV[4]), rtt)
return {1}

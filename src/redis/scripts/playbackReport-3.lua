-- Stores a member's latest RTT (already clamped by the caller) in the room's rtt hash.
-- Code rooms require membership, checked here so a report racing a leave cannot resurrect an
-- entry for a departed member; program rooms are checked against the JWT by the caller.
-- KEYS[1] meta  KEYS[2] members  KEYS[3] rtt
-- ARGV clientId rttMs requireMember(1|0) roomTtlMs
-- Returns {1} | {-1} no room | {-3} not a member
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return {-3} end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {1}

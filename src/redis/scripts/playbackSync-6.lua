--@include common
-- Claims one drift-sync tick of a playback generation, so that each tick is broadcast at most once
-- however often its job runs (a stalled job re-run by BullMQ after its worker died, a retry).
-- An empty room ends the chain: nobody listens, and a member who comes back gets the position from
-- the snapshot; drift correction resumes with the next command.
-- KEYS[1..6] the room's state keys (see room_keys in common)
-- ARGV generation tick roomTtlMs
-- Returns {1, playbackFlat}  tick claimed: broadcast it and schedule the next one
--         {2, playbackFlat}  this tick was already claimed (a re-run): only make sure the next is scheduled
--         {-5}               stale: room gone or empty, generation moved on, not playing, or a later tick ran
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('EXISTS', meta) == 0 or redis.call('HLEN', members) == 0 then return {-5} end
local st = redis.call('HMGET', playback, 'gen', 'playing', 'syncTick')
if st[1] ~= ARGV[1] or st[2] ~= '1' then return {-5} end
local tick, last = tonumber(ARGV[2]), tonumber(st[3]) or 0
if tick < last then return {-5} end
if tick == last then return {2, redis.call('HGETALL', playback)} end
redis.call('HSET', playback, 'syncTick', tick)
-- A long play with no commands is activity: the room's state must not expire under it.
touch_room(tonumber(ARGV[3]), playback)
return {1, redis.call('HGETALL', playback)}

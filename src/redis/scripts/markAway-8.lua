--@include common
-- An unexpected disconnect: the member stays in the room as 'away', is queued for the next
-- batched presence flush, and is entered in the room's away set under the time its grace period
-- ends (the batched eviction job of that window evicts it then unless it came back). Ignored when
-- a newer connection (epoch) of the client already rejoined.
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)
-- KEYS[7] flush  KEYS[8] away (sorted set clientId -> evict-at ms)
-- ARGV clientId epoch flushTtlMs roomTtlMs evictAtMs
-- Returns {1, flushGen(0 = already scheduled)} | {0} already away | {-3} not a member | {-5} stale
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local flush, away = KEYS[7], KEYS[8]
local raw = redis.call('HGET', members, ARGV[1])
if not raw then return {-3} end
local p = cjson.decode(raw)
if tonumber(p.epoch) ~= tonumber(ARGV[2]) then return {-5} end
if p.status == 'away' then
  -- Already away under this epoch (a repeated disconnect, the reaper after the worker's own
  -- handler): the entry stays as first written, so repeating never extends the grace period.
  redis.call('ZADD', away, 'NX', ARGV[5], ARGV[1])
  return {0}
end
p.status = 'away'
redis.call('HSET', members, ARGV[1], cjson.encode(p))
redis.call('HSET', pending, ARGV[1], 'away')
redis.call('ZADD', away, ARGV[5], ARGV[1])
touch(tonumber(ARGV[4]), away)
touch_room(tonumber(ARGV[4]), pending)
return {1, request_flush(meta, flush, tonumber(ARGV[3]))}

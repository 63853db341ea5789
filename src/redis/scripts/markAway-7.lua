--@include common
-- An unexpected disconnect: the member stays in the room as 'away' and is queued for the next
-- batched presence flush. Ignored when a newer connection (epoch) of the client already rejoined.
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)  KEYS[7] flush
-- ARGV clientId epoch flushTtlMs roomTtlMs
-- Returns {1, flushGen(0 = already scheduled)} | {0} already away | {-3} not a member | {-5} stale
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local flush = KEYS[7]
local raw = redis.call('HGET', members, ARGV[1])
if not raw then return {-3} end
local p = cjson.decode(raw)
if tonumber(p.epoch) ~= tonumber(ARGV[2]) then return {-5} end
if p.status == 'away' then return {0} end
p.status = 'away'
redis.call('HSET', members, ARGV[1], cjson.encode(p))
redis.call('HSET', pending, ARGV[1], 'away')
touch_room(tonumber(ARGV[4]), pending)
return {1, request_flush(meta, flush, tonumber(ARGV[3]))}

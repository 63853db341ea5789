--@include common
-- A member comes back (new socket, possibly another worker): it is online again under its new
-- epoch, and if others saw it as away its return is queued for the batched presence flush.
-- KEYS[1] meta  KEYS[2] members  KEYS[3] pending  KEYS[4] flush
-- ARGV clientId epoch flushTtlMs roomTtlMs
-- Epochs only move forward: the rejoin of an older connection, processed after a newer one's
-- (a replaced socket's request still in flight), is stale and changes nothing — otherwise the
-- member would carry an epoch no live socket has, and could never be marked away or evicted.
-- Returns {1, wasAway, flushGen, publicParticipantJson} | {-1} no room | {-3} not a member | {-5} stale
local meta, members, pending, flush = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', meta) == 0 then return {-1} end
local raw = redis.call('HGET', members, ARGV[1])
if not raw then return {-3} end
local p = cjson.decode(raw)
if tonumber(p.epoch) > tonumber(ARGV[2]) then return {-5} end
local wasAway = p.status == 'away'
p.status = 'online'
p.epoch = tonumber(ARGV[2])
redis.call('HSET', members, ARGV[1], cjson.encode(p))
local gen = 0
if wasAway then
  redis.call('HSET', pending, ARGV[1], 'online')
  gen = request_flush(meta, flush, tonumber(ARGV[3]))
end
touch(tonumber(ARGV[4]), meta, members)
return {1, wasAway and 1 or 0, gen, public_participant(p)}

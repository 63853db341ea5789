--@include common
-- Appends an app event (room:event) with idempotency: the same dedup key returns the original
-- seq and appends nothing, so a resend after a reconnect never doubles a message.
-- KEYS[1] meta  KEYS[2] members  KEYS[3] log  KEYS[4] dedup  KEYS[5] dedupAge
-- ARGV clientId dedupKey('' = none) payloadJson maxEvents catchupTtlMs dedupTtlMs roomTtlMs requireMember(1|0)
-- Returns {1, seq, trimmed} | {2, originalSeq, originalEntry('' once trimmed)} duplicate
--         {-1} no room | {-3} not a member
-- A duplicate returns the logged entry so the caller can broadcast it again: the first attempt
-- may have died between this script and its broadcast (a worker killed mid-publish), and without
-- a second broadcast a client connected all along would only notice at the next event.
local meta, members, log, dedup, dedupAge = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local clientId, dedupKey = ARGV[1], ARGV[2]
if redis.call('EXISTS', meta) == 0 then return {-1} end
if ARGV[8] == '1' and redis.call('HEXISTS', members, clientId) == 0 then return {-3} end
if dedupKey ~= '' then
  local original = redis.call('HGET', dedup, dedupKey)
  if original then
    local entry = redis.call('ZRANGE', log, original, original, 'BYSCORE')
    return {2, tonumber(original), entry[1] or ''}
  end
end
local seq, trimmed = append_event(meta, log, 'room:event', ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
if dedupKey ~= '' then
  local now = now_ms()
  local dedupTtl = tonumber(ARGV[6])
  redis.call('HSET', dedup, dedupKey, seq)
  redis.call('ZADD', dedupAge, now, dedupKey)
  local old = redis.call('ZRANGE', dedupAge, '-inf', now - dedupTtl, 'BYSCORE', 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('HDEL', dedup, unpack(old))
    redis.call('ZREM', dedupAge, unpack(old))
  end
  touch(dedupTtl, dedup, dedupAge)
end
touch(tonumber(ARGV[7]), meta, members)
return {1, seq, trimmed}

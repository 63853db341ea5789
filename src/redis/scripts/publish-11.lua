--@include common
-- Appends an app event (room:event) with idempotency: the same dedup key returns the original
-- seq and appends nothing, so a resend after a reconnect never doubles a message.
-- Budgets that hold across sockets and workers — per room, and per publisher in the room — are
-- token buckets checked here, in the same step, so they cost the hottest path no round trip.
-- A resend (dedup hit) takes no token: it appends nothing.
-- The hottest script: one clock read, one TTL check for the room (touch_room), buckets read with
-- one MGET, dedup entries and old log entries swept on every 8th seq only (a dedup entry older
-- than DEDUP_TTL_MS may thus still answer for a few more publishes — it only dedups longer).
-- KEYS[1..6] the room's state keys (see room_keys in common)
-- KEYS[7] log  KEYS[8] dedup  KEYS[9] dedupAge  KEYS[10] room publish bucket  KEYS[11] the publisher's bucket in this room
--   (the buckets are strings "tokens ts", see bucket_level in common)
-- ARGV clientId dedupKey('' = none) payloadJson maxEvents catchupTtlMs dedupTtlMs roomTtlMs requireMember(1|0)
--      roomRate roomBurst userRate userBurst (rate 0 = no budget)
--      channel head tail: the broadcast this script publishes once appended (channel '' = none, see append_event in common)
-- Returns {1, seq, trimmed} | {2, originalSeq, originalEntry('' once trimmed)} duplicate
--         {-1} no room | {-3} not a member | {-8, retryAfterMs} over a budget
-- A duplicate returns the logged entry so the caller can broadcast it again: the first attempt
-- may have died between this script and its broadcast (a worker killed mid-publish), and without
-- a second broadcast a client connected all along would only notice at the next event.
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local log, dedup, dedupAge, roomBucket, userBucket = KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local clientId, dedupKey = ARGV[1], ARGV[2]
-- Existence and the room's remaining TTL in one command (refreshed below, once appended).
local left = redis.call('PTTL', meta)
if left == -2 then return {-1} end
if ARGV[8] == '1' and redis.call('HEXISTS', members, clientId) == 0 then return {-3} end
if dedupKey ~= '' then
  local original = redis.call('HGET', dedup, dedupKey)
  if original then
    local entry = redis.call('ZRANGE', log, original, original, 'BYSCORE')
    return {2, tonumber(original), entry[1] or ''}
  end
end
local now = now_ms()
local roomRate, roomBurst = tonumber(ARGV[9]), tonumber(ARGV[10])
local userRate, userBurst = tonumber(ARGV[11]), tonumber(ARGV[12])
if roomRate > 0 or userRate > 0 then
  local b = redis.call('MGET', roomBucket, userBucket)
  local roomLevel = roomRate > 0 and bucket_level(b[1], roomRate, roomBurst, now) or 1
  local userLevel = userRate > 0 and bucket_level(b[2], userRate, userBurst, now) or 1
  if roomLevel < 1 or userLevel < 1 then
    local wait = 0
    if roomLevel < 1 then wait = math.max(wait, math.ceil((1 - roomLevel) * 1000 / roomRate)) end
    if userLevel < 1 then wait = math.max(wait, math.ceil((1 - userLevel) * 1000 / userRate)) end
    return {-8, wait}
  end
  if roomRate > 0 then bucket_take(roomBucket, roomLevel, roomRate, roomBurst, now) end
  if userRate > 0 then bucket_take(userBucket, userLevel, userRate, userBurst, now) end
end
local seq, trimmed = append_event(meta, log, 'room:event', ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), now, 13)
if dedupKey ~= '' then
  local dedupTtl = tonumber(ARGV[6])
  redis.call('HSET', dedup, dedupKey, seq)
  redis.call('ZADD', dedupAge, now, dedupKey)
  if seq % 8 == 0 then
    local old = redis.call('ZRANGE', dedupAge, '-inf', now - dedupTtl, 'BYSCORE', 'LIMIT', 0, 100)
    if #old > 0 then
      redis.call('HDEL', dedup, unpack(old))
      redis.call('ZREM', dedupAge, unpack(old))
    end
  end
  -- Both are written together, so dedupAge's TTL speaks for both (one PTTL instead of two
  -- PEXPIREs; refreshed to 17/16 of the TTL once less than the TTL is left).
  if redis.call('PTTL', dedupAge) < dedupTtl then touch(dedupTtl + math.floor(dedupTtl / 16), dedup, dedupAge) end
end
refresh_room(left, tonumber(ARGV[7]))
return {1, seq, trimmed}

--@include common
-- A rejoin after a reconnect, in one step: the member is online again under its new epoch (a
-- return from away is queued for the batched presence flush), and the caller gets either the
-- events after the client's position or the room's state — never a partial replay.
-- Epochs only move forward: the rejoin of an older connection, processed after a newer one's
-- (a replaced socket's request still in flight), is stale and changes nothing — otherwise the
-- member would carry an epoch no live socket has, and could never be marked away or evicted.
-- Program rooms (requireMember 0) have no members: only the position part runs.
-- KEYS[1..6] the room's state keys (see room_keys in common)  KEYS[7] flush  KEYS[8] log
-- KEYS[9] away (a returning member leaves it: its window's eviction job then finds nothing to do)
-- ARGV clientId epoch requireMember(1|0) flushTtlMs roomTtlMs lastSeq(''=none) incarnation(''=any)
--      pageSize catchupTtlMs
-- Returns {1, wasAway, flushGen, seq, incarnation, 'replay', more, entries}
--         {1, wasAway, flushGen, seq, incarnation, 'snapshot', metaFlat, memberJsons, playbackFlat}
--         {-1} no room | {-3} not a member | {-5} stale (a newer connection rejoined)
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local flush, log, away = KEYS[7], KEYS[8], KEYS[9]
local clientId, epoch = ARGV[1], tonumber(ARGV[2])
-- Every room's meta has a seq (0 at creation): no seq, no room.
local state = redis.call('HMGET', meta, 'seq', 'inc', 'createdAt')
if not state[1] then return {-1} end

local wasAway, gen = 0, 0
if ARGV[3] == '1' then
  local raw = redis.call('HGET', members, clientId)
  if not raw then return {-3} end
  local p = cjson.decode(raw)
  if (tonumber(p.epoch) or 0) > epoch then return {-5} end
  if p.status == 'away' then wasAway = 1 end
  p.status = 'online'
  p.epoch = epoch
  redis.call('HSET', members, clientId, cjson.encode(p))
  if wasAway == 1 then
    redis.call('ZREM', away, clientId)
    redis.call('HSET', pending, clientId, 'online')
    gen = request_flush(meta, flush, tonumber(ARGV[4]))
    touch_room(tonumber(ARGV[5]), pending)
  else
    touch_room(tonumber(ARGV[5]))
  end
end

local seq = tonumber(state[1]) or 0
local inc = room_incarnation(state[2], state[3])
if ARGV[6] ~= '' and (ARGV[7] == '' or ARGV[7] == inc) then
  local fromSeq, limit = tonumber(ARGV[6]), tonumber(ARGV[8])
  if fromSeq == seq then return {1, wasAway, gen, seq, inc, 'replay', 0, {}} end
  if fromSeq < seq then
    -- Age first: the log must still hold fromSeq + 1 within the recovery window.
    trim_log_age(log, now_ms() - tonumber(ARGV[9]))
    local first = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    if #first > 0 and tonumber(first[2]) <= fromSeq + 1 then
      local entries = redis.call('ZRANGE', log, '(' .. fromSeq, '+inf', 'BYSCORE', 'LIMIT', 0, limit)
      local more = 0
      if #entries == limit and fromSeq + limit < seq then more = 1 end
      return {1, wasAway, gen, seq, inc, 'replay', more, entries}
    end
  end
end
return {1, wasAway, gen, seq, inc, 'snapshot', redis.call('HGETALL', meta), redis.call('HVALS', members), redis.call('HGETALL', playback)}

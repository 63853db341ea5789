-- Shared helpers, inlined by the loader wherever a script says `--@include common`.
-- Return codes of all scripts: 1 (or 2) success; negative values are mapped to error codes in
-- one place, src/redis/scripts.ts (SCRIPT_ERRORS).

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Drops log entries older than cutoff (ms). Entries are appended with Redis' own clock, so their
-- ts order equals their seq order and the old ones are always a prefix of the set.
local function trim_log_age(logKey, cutoff)
  -- Common case first: the oldest entry is recent, nothing to do (one entry read, not a batch).
  local first = redis.call('ZRANGE', logKey, 0, 0)
  if #first == 0 then return 0 end
  local firstTs = tonumber(string.match(first[1], '"ts":(%d+)'))
  if not firstTs or firstTs >= cutoff then return 0 end
  local removed = 0
  while true do
    local batch = redis.call('ZRANGE', logKey, 0, 99)
    if #batch == 0 then return removed end
    local old = 0
    for i = 1, #batch do
      local ts = tonumber(string.match(batch[i], '"ts":(%d+)'))
      if ts and ts < cutoff then old = i else break end
    end
    if old == 0 then return removed end
    redis.call('ZREMRANGEBYRANK', logKey, 0, old - 1)
    removed = removed + old
    if old < #batch then return removed end
  end
end

-- Assigns the room's next seq and appends the event to its log in one step, so a seq can never
-- be handed out without its log entry (or the reverse). payload is JSON object text that always
-- has at least roomId; seq is spliced in as its first field rather than decoded and re-encoded,
-- because cjson would turn app data like [] into {}.
-- Returns seq, number of entries trimmed by count and age.
local function append_event(metaKey, logKey, name, payload, maxEvents, catchupTtlMs)
  local seq = redis.call('HINCRBY', metaKey, 'seq', 1)
  local ts = now_ms()
  local body = '{"seq":' .. seq .. ',' .. string.sub(payload, 2)
  local entry = '{"seq":' .. seq .. ',"name":"' .. name .. '","ts":' .. ts .. ',"payload":' .. body .. '}'
  redis.call('ZADD', logKey, seq, entry)
  local trimmed = 0
  local n = redis.call('ZCARD', logKey)
  if n > maxEvents then
    trimmed = redis.call('ZREMRANGEBYRANK', logKey, 0, n - maxEvents - 1)
  end
  trimmed = trimmed + trim_log_age(logKey, ts - catchupTtlMs)
  redis.call('PEXPIRE', logKey, catchupTtlMs)
  return seq, trimmed
end

-- room_keys: every script over a room's state takes the room's state keys first, in this order
-- (src/redis/keys.ts builds them): KEYS[1] meta  KEYS[2] members  KEYS[3] users  KEYS[4] playback
-- KEYS[5] rtt  KEYS[6] pending. Activity refreshes all six under one TTL rule (ROOM_TTL_MS), so a
-- busy room never loses its users hash or a paused playback, and a pending set never outlives
-- its room. (The log and the dedup set age by their own, shorter rules.)
local function touch_room(ttlMs)
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], ttlMs) end
end

-- Refreshes the TTL of other keys (dedup) under their own rule.
local function touch(ttlMs, ...)
  for _, key in ipairs({...}) do redis.call('PEXPIRE', key, ttlMs) end
end

-- The participant as clients see it (no epoch, no announcement bookkeeping).
local function public_participant(p)
  return cjson.encode({
    clientId = p.clientId, userId = p.userId, name = p.name, role = p.role,
    status = p.status, canControl = p.canControl, joinedAt = p.joinedAt,
  })
end

-- A token bucket in a hash {t = tokens, ts = last refill ms}: `rate` tokens per second up to
-- `burst`. Returns the tokens it would have now (refilled, not taken).
local function bucket_level(key, rate, burst, now)
  local b = redis.call('HMGET', key, 't', 'ts')
  local tokens, ts = tonumber(b[1]), tonumber(b[2])
  if not tokens or not ts then return burst end
  return math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
end

local function bucket_take(key, level, rate, burst, now)
  redis.call('HSET', key, 't', level - 1, 'ts', now)
  -- A bucket refills completely within burst / rate seconds; after that it is as good as absent.
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
end

-- A room's incarnation: set at creation; rooms created before incarnations existed fall back to
-- their creation time, which differs between two lives of one code as well.
local function room_incarnation(inc, createdAt)
  if inc and inc ~= '' then return inc end
  return 'c' .. (createdAt or '0')
end

-- Appends a lifecycle webhook to an outbox in the same step that changed the state (the
-- transactional outbox: no webhook for a change that did not happen, none lost when the worker
-- dies before relaying it). `filter` is ',type,type,…,' of the wanted types; '' = webhooks off.
-- Ids are derived from the state (room, incarnation, seq…): the same change always has the same id.
local function hook(outbox, filter, id, kind, dataJson)
  if filter == '' or not string.find(filter, ',' .. kind .. ',', 1, true) then return 0 end
  redis.call('RPUSH', outbox, '{"id":' .. cjson.encode(id) .. ',"type":"' .. kind .. '","ts":' .. now_ms() .. ',"data":' .. dataJson .. '}')
  -- A week: relayed within seconds normally; the TTL only bounds an outbox nobody relays.
  redis.call('PEXPIRE', outbox, 604800000)
  return 1
end

local function json_array(items)
  if #items == 0 then return '[]' end
  local parts = {}
  for i = 1, #items do parts[i] = cjson.encode(items[i]) end
  return '[' .. table.concat(parts, ',') .. ']'
end

-- Marks the room as having presence changes to flush. Returns the new flush generation when the
-- caller must schedule the flush job, 0 when one is already scheduled. The flag expires on its own
-- so that a worker dying between this script and queue.add cannot block flushes forever.
local function request_flush(metaKey, flushKey, flushTtlMs)
  if redis.call('SET', flushKey, '0', 'NX', 'PX', flushTtlMs) then
    local gen = redis.call('HINCRBY', metaKey, 'flushGen', 1)
    redis.call('SET', flushKey, gen, 'PX', flushTtlMs)
    return gen
  end
  return 0
end

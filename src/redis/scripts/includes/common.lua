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
-- because cjson would turn app data like [] into {}. `now` (ms, Redis' clock) when the caller has
-- read it already: one TIME per script. `broadcastAt`: the ARGV index of the script's broadcast
-- (channel, then head and tail at the next two; see ScriptBroadcast in src/fanout/port.ts): the
-- event is PUBLISHed as the Socket.IO adapter's own message, head .. payload .. tail, in the step
-- that gives it its seq, so every worker receives a room's events in seq order. An empty channel
-- (or nil) means the caller broadcasts instead.
-- Trimming by count removes by score (every seq has its entry, so the entries at or below
-- seq - maxEvents are exactly the surplus: one command, no ZCARD). Trimming by age runs on every
-- 8th append only: it bounds memory, and every read (catchup, rejoin) trims by age before it reads.
-- Returns seq, number of entries trimmed by count and age.
local function append_event(metaKey, logKey, name, payload, maxEvents, catchupTtlMs, now, broadcastAt)
  local seq = redis.call('HINCRBY', metaKey, 'seq', 1)
  local ts = now or now_ms()
  local body = '{"seq":' .. seq .. ',' .. string.sub(payload, 2)
  local entry = '{"seq":' .. seq .. ',"name":"' .. name .. '","ts":' .. ts .. ',"payload":' .. body .. '}'
  redis.call('ZADD', logKey, seq, entry)
  local trimmed = 0
  if seq > maxEvents then
    trimmed = redis.call('ZREMRANGEBYSCORE', logKey, '-inf', seq - maxEvents)
  end
  if seq % 8 == 0 then trimmed = trimmed + trim_log_age(logKey, ts - catchupTtlMs) end
  redis.call('PEXPIRE', logKey, catchupTtlMs)
  local channel = broadcastAt and ARGV[broadcastAt] or ''
  if channel ~= '' then redis.call('PUBLISH', channel, ARGV[broadcastAt + 1] .. body .. ARGV[broadcastAt + 2]) end
  return seq, trimmed
end

-- room_keys: every script over a room's state takes the room's state keys first, in this order
-- (src/redis/keys.ts builds them): KEYS[1] meta  KEYS[2] members  KEYS[3] users  KEYS[4] playback
-- KEYS[5] rtt  KEYS[6] pending. Activity keeps all six alive under one TTL rule (ROOM_TTL_MS), so a
-- busy room never loses its users hash or a paused playback, and a pending set never outlives
-- its room. (The log and the dedup set age by their own, shorter rules.)
-- The rule: after any activity every key of the room lives at least ttlMs more. Refreshing all six
-- on every event cost six PEXPIREs per publish; instead meta's remaining TTL decides (one PTTL):
-- below ttlMs, all six are set to ttlMs + 1/16, so a busy room refreshes them once per 1/16 of
-- the TTL and a quiet room expires between ttlMs and 17/16 of it after its last activity. A key
-- the script may just have created (the first member, the first pending change, …) is passed in
-- `...` and gets meta's deadline, so the six still expire together.
-- refresh_room takes meta's PTTL as the caller read it (publish reads it first: it doubles as the
-- existence check); touch_room reads it. Both return it (-2: meta does not exist, nothing done).
local function refresh_room(left, ttlMs, ...)
  if left == -2 then return left end
  if left < ttlMs then
    local target = ttlMs + math.floor(ttlMs / 16)
    for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], target) end
    return left
  end
  for _, key in ipairs({...}) do redis.call('PEXPIRE', key, left) end
  return left
end

local function touch_room(ttlMs, ...)
  return refresh_room(redis.call('PTTL', KEYS[1]), ttlMs, ...)
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

-- A token bucket in a string "tokens ts" (ts = last refill, ms): `rate` tokens per second up to
-- `burst`. A string, not a hash, so that one MGET reads both of a publish's buckets and one
-- SET … PX writes each with its expiry. `raw` is the stored value (false: absent).
-- Returns the tokens it would have now (refilled, not taken).
local function bucket_level(raw, rate, burst, now)
  if not raw then return burst end
  local tokens, ts = string.match(raw, '^(%S+) (%S+)$')
  tokens, ts = tonumber(tokens), tonumber(ts)
  if not tokens or not ts then return burst end
  return math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
end

local function bucket_take(key, level, rate, burst, now)
  -- A bucket refills completely within burst / rate seconds; after that it is as good as absent.
  redis.call('SET', key, (level - 1) .. ' ' .. now, 'PX', math.ceil(burst * 1000 / rate) + 1000)
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
local function hook(outbox, filter, id, kind, dataJson, now)
  if filter == '' or not string.find(filter, ',' .. kind .. ',', 1, true) then return 0 end
  redis.call('RPUSH', outbox, '{"id":' .. cjson.encode(id) .. ',"type":"' .. kind .. '","ts":' .. (now or now_ms()) .. ',"data":' .. dataJson .. '}')
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

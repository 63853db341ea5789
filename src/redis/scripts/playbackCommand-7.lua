--@include common
-- Applies a playback command (start | pause | seek | stop): permission check, sync buffer, state
-- write and log append in one atomic step, so two controllers pressing at once are serialized and
-- every state the hash ever held was broadcast with its own seq.
-- Rules mirror src/playback/rules.ts (canControlPlayback, syncBufferMs): change both together.
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)  KEYS[7] log
-- ARGV clientId action trackId positionMs(''=keep/derive) now defaultRttMs minBufferMs maxBufferMs
--      maxEvents catchupTtlMs roomTtlMs
--      channel head tail: the command's broadcast (channel '' = none, see append_event in common)
-- Returns {1, seq, payloadJson, generation, playing(1|0), startAtServerTime}
--         {0} pause/seek with nothing loaded, {-1} no room, {-3} not a member, {-7} not allowed
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local log = KEYS[7]
local clientId, action, trackArg, posArg = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, defaultRtt = tonumber(ARGV[5]), tonumber(ARGV[6])
local minBuf, maxBuf = tonumber(ARGV[7]), tonumber(ARGV[8])

if redis.call('EXISTS', meta) == 0 then return {-1} end
if redis.call('HGET', meta, 'kind') == 'program' then return {-7} end
local raw = redis.call('HGET', members, clientId)
if not raw then return {-3} end
local p = cjson.decode(raw)
if not (p.role == 'host' or p.canControl == true) then return {-7} end

local st = {}
local flat = redis.call('HGETALL', playback)
for i = 1, #flat, 2 do st[flat[i]] = flat[i + 1] end
local loaded = st.trackId ~= nil and st.trackId ~= ''
if (action == 'pause' or action == 'seek') and not loaded then return {0} end

-- Max RTT over current members. Entries of members that left are pruned here instead of in
-- leaveRoom, so the hash stays bounded by the room's size without other scripts knowing of it.
local maxRtt = -1
local stale = {}
local rtts = redis.call('HGETALL', rtt)
for i = 1, #rtts, 2 do
  if redis.call('HEXISTS', members, rtts[i]) == 1 then
    local v = tonumber(rtts[i + 1]) or 0
    if v > maxRtt then maxRtt = v end
  else
    stale[#stale + 1] = rtts[i]
  end
end
for i = 1, #stale, 1000 do
  redis.call('HDEL', rtt, unpack(stale, i, math.min(i + 999, #stale)))
end
if maxRtt < 0 then maxRtt = defaultRtt end
local buffer = math.min(maxBuf, math.max(minBuf, 2 * maxRtt))
local startAt = now + buffer

-- Where the current track is at server time t, from the stored state (as playbackAt in model.ts).
local function position_at(t)
  local base = tonumber(st.positionMs or '0') or 0
  local from = tonumber(st.startAtServerTime or '')
  if st.playing == '1' and from then return base + math.max(0, t - from) end
  return base
end

local playing, trackId, positionMs
if action == 'start' then
  playing, trackId, positionMs = true, trackArg, tonumber(posArg) or 0
elseif action == 'pause' then
  -- Without an explicit position, freeze where the track will be when the pause takes effect.
  playing, trackId = false, st.trackId
  positionMs = tonumber(posArg) or position_at(startAt)
elseif action == 'seek' then
  playing, trackId, positionMs = st.playing == '1', st.trackId, tonumber(posArg) or 0
else -- stop
  playing, trackId, positionMs = false, '', 0
end

local gen = redis.call('HINCRBY', playback, 'gen', 1)
redis.call('HSET', playback, 'playing', playing and '1' or '0', 'trackId', trackId,
  'positionMs', positionMs, 'startAtServerTime', startAt, 'syncBufferMs', buffer,
  'by', clientId, 'updatedAt', now)
-- The drift-sync tick counter belongs to one generation.
redis.call('HDEL', playback, 'syncTick')

local payload = cjson.encode({
  roomId = redis.call('HGET', meta, 'id'), action = action, by = clientId, playing = playing,
  trackId = (trackId ~= '' and trackId) or cjson.null, positionMs = positionMs,
  startAtServerTime = startAt, syncBufferMs = buffer, serverTimestamp = now,
})
local seq = append_event(meta, log, 'playback:' .. action, payload, tonumber(ARGV[9]), tonumber(ARGV[10]), nil, 12)
touch_room(tonumber(ARGV[11]), playback)
return {1, seq, payload, gen, playing and 1 or 0, startAt}

--@include common
-- Removes a member and announces it with a sequenced room:participant:left.
-- mode 'evict' is the grace-period job: it only removes a member that is still away under the
-- epoch the job was scheduled with, so a client that came back is never evicted by a stale job.
-- mode 'leave' (room:leave, a deliberate disconnect) is refused when a newer connection of the
-- client has rejoined since: an old socket's goodbye, processed late, must not remove the seat
-- its successor just took back.
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)  KEYS[7] log
-- mode 'kick' (a backend removes the member) removes it whatever its status or epoch.
-- KEYS[8] webhook outbox: member.left (only here — after the grace period, never for a blip) and
-- room.vacated when it was the last member
-- KEYS[9] away: a member that goes leaves the away set too
-- ARGV clientId mode(leave|evict|kick) epoch reason maxEvents catchupTtlMs roomTtlMs webhookFilter
--      channel head tail: the left event's broadcast (channel '' = none, see append_event in common)
-- Returns {1, seq, payloadJson} | {-3} not a member | {-5} stale eviction
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local log, hooks, away = KEYS[7], KEYS[8], KEYS[9]
local clientId, mode, epoch, reason = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]

local raw = redis.call('HGET', members, clientId)
if not raw then return {-3} end
local p = cjson.decode(raw)
if mode == 'evict' and (p.status ~= 'away' or tonumber(p.epoch) ~= epoch) then return {-5} end
if mode == 'leave' and tonumber(p.epoch) > epoch then return {-5} end

redis.call('HDEL', members, clientId)
redis.call('HDEL', pending, clientId)
redis.call('ZREM', away, clientId)

local stillPresent = false
if p.userId ~= cjson.null then
  local remaining = redis.call('HINCRBY', users, p.userId, -1)
  if remaining <= 0 then redis.call('HDEL', users, p.userId) else stillPresent = true end
end

-- Hand the room to the longest-present member so playback control is never orphaned.
local newHost = cjson.null
if p.role == 'host' then
  local best = nil
  for _, m in ipairs(redis.call('HVALS', members)) do
    local c = cjson.decode(m)
    if best == nil or c.joinedAt < best.joinedAt then best = c end
  end
  if best then
    best.role = 'host'
    best.canControl = true
    redis.call('HSET', members, best.clientId, cjson.encode(best))
    redis.call('HSET', meta, 'hostClientId', best.clientId)
    newHost = best.clientId
  else
    redis.call('HSET', meta, 'hostClientId', '')
  end
end

local payload = cjson.encode({
  roomId = redis.call('HGET', meta, 'id'), clientId = clientId, userId = p.userId, reason = reason,
  userStillPresent = stillPresent, newHostClientId = newHost,
})
local seq = append_event(meta, log, 'room:participant:left', payload, tonumber(ARGV[5]), tonumber(ARGV[6]), nil, 9)
touch_room(tonumber(ARGV[7]))
local m = redis.call('HMGET', meta, 'id', 'inc', 'createdAt')
local base = 'msg_' .. m[1] .. '_' .. room_incarnation(m[2], m[3]) .. '_' .. seq
hook(hooks, ARGV[8], base, 'member.left', '{"roomId":' .. cjson.encode(m[1]) .. ',"seq":' .. seq .. ',"clientId":' .. cjson.encode(clientId) ..
  ',"userId":' .. cjson.encode(p.userId) .. ',"reason":' .. cjson.encode(reason) .. '}')
if redis.call('HLEN', members) == 0 then
  hook(hooks, ARGV[8], base .. '_vacated', 'room.vacated', '{"roomId":' .. cjson.encode(m[1]) .. ',"seq":' .. seq .. '}')
end
return {1, seq, payload}

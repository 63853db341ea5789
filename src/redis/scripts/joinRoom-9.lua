--@include common
-- Admits a client to a room: existence, capacity and membership are checked and the member added
-- in one atomic step, so two workers admitting the last seat at once cannot overfill the room.
-- The entry checks come first, in the same read: a program room is not joined by code, and a room
-- with a password admits only a caller that verified that very hash (a slow hash has no place
-- inside Redis: the script hands the hash out, the caller checks the password and calls again).
-- The join is announced by a sequenced room:participant:joined — unless the room already has
-- batchThreshold members: then the member is written to the pending set like a return, and the
-- batched presence flush (flushPresence) announces it in the window's room:presence `joined`, so
-- that a crowd joining a large room costs about one broadcast per window instead of one per join
-- to every member. The member then carries no `announced` status until that flush.
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)  KEYS[7] log
-- KEYS[8] webhook outbox  KEYS[9] flush
-- ARGV clientId userId(''=guest) name epoch now maxEvents catchupTtlMs roomTtlMs webhookFilter
--      batchThreshold(0 = never batch) flushTtlMs
--      channel head tail: the joined event's broadcast (channel '' = none, see append_event in common)
--      verifiedPasswordHash: the room's password hash the caller checked the password against ('' = none)
-- Returns {1, seq, publicParticipantJson, metaFlat, memberJsons, playbackFlat, batched(0|1), flushGen}
--           seq: of the room:participant:joined (0 when batched); flushGen > 0: schedule the flush
--         {2} already a member (caller rejoins instead), {3} a program room (joined through the
--         JWT, never by code), {4, passwordHash} the password is to be checked first,
--         {-1} no room, {-2} full
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local log, hooks, flush = KEYS[7], KEYS[8], KEYS[9]
local clientId, userId, name = ARGV[1], ARGV[2], ARGV[3]
local epoch, now = tonumber(ARGV[4]), tonumber(ARGV[5])

local m = redis.call('HMGET', meta, 'id', 'maxParticipants', 'hostClientId', 'hostUserId', 'inc', 'createdAt', 'seq', 'kind', 'passwordHash')
local roomId = m[1]
if not roomId then return {-1} end
if m[8] == 'program' then return {3} end
if m[9] and m[9] ~= '' and m[9] ~= ARGV[15] then return {4, m[9]} end
if redis.call('HEXISTS', members, clientId) == 1 then return {2} end
local count = redis.call('HLEN', members)
if count >= tonumber(m[2]) then return {-2} end

local role = 'member'
local hostClientId, hostUserId = m[3] or '', m[4] or ''
if hostClientId == '' and (hostUserId == '' or hostUserId == userId) then
  role = 'host'
  redis.call('HSET', meta, 'hostClientId', clientId)
end

local threshold = tonumber(ARGV[10])
local batched = threshold > 0 and count >= threshold
local p = {
  clientId = clientId, userId = (userId ~= '' and userId) or cjson.null, name = name, role = role,
  status = 'online', canControl = (role == 'host'), joinedAt = now, epoch = epoch,
}
if not batched then p.announced = 'online' end
redis.call('HSET', members, clientId, cjson.encode(p))
-- Keys this step may have created get the room's deadline (touch_room); the others have it.
local created = {}
if count == 0 then table.insert(created, members) end
if userId ~= '' and redis.call('HINCRBY', users, userId, 1) == 1 then table.insert(created, users) end

local pub = public_participant(p)
local inc = room_incarnation(m[5], m[6])
local seq, gen, hookId, clock = 0, 0, nil, nil
if batched then
  redis.call('HSET', pending, clientId, 'joined')
  gen = request_flush(meta, flush, tonumber(ARGV[11]))
  -- A flush already scheduled means a pending set that exists (whoever scheduled it wrote to it).
  if gen > 0 then table.insert(created, pending) end
  touch_room(tonumber(ARGV[8]), unpack(created))
  -- No seq of its own: the join is identified by the room's position and the client (a client
  -- that leaves and joins again does so at a later position: its leave appended an event).
  local at = m[7] or '0'
  hookId = 'msg_' .. roomId .. '_' .. inc .. '_' .. at .. '_j' .. redis.sha1hex(clientId)
  seq = tonumber(at)
else
  clock = now_ms()
  seq = append_event(meta, log, 'room:participant:joined',
    '{"roomId":' .. cjson.encode(roomId) .. ',"participant":' .. pub .. '}', tonumber(ARGV[6]), tonumber(ARGV[7]), clock, 12)
  touch_room(tonumber(ARGV[8]), unpack(created))
  hookId = 'msg_' .. roomId .. '_' .. inc .. '_' .. seq
end
hook(hooks, ARGV[9], hookId, 'member.joined',
  '{"roomId":' .. cjson.encode(roomId) .. ',"seq":' .. seq .. ',"participant":' .. pub .. '}', clock)

return {1, batched and 0 or seq, pub, redis.call('HGETALL', meta), redis.call('HVALS', members), redis.call('HGETALL', playback), batched and 1 or 0, gen}

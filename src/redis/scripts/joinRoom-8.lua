--@include common
-- Admits a client to a room: existence, capacity and membership are checked and the member added
-- in one atomic step, so two workers admitting the last seat at once cannot overfill the room.
-- The password is verified by the caller before (a slow hash has no place inside Redis).
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)  KEYS[7] log
-- KEYS[8] webhook outbox
-- ARGV clientId userId(''=guest) name epoch now maxEvents catchupTtlMs roomTtlMs webhookFilter
-- Returns {1, seq, publicParticipantJson, metaFlat, memberJsons, playbackFlat}
--         {2} already a member (caller rejoins instead), {-1} no room, {-2} full
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local log, hooks = KEYS[7], KEYS[8]
local clientId, userId, name = ARGV[1], ARGV[2], ARGV[3]
local epoch, now = tonumber(ARGV[4]), tonumber(ARGV[5])

if redis.call('EXISTS', meta) == 0 then return {-1} end
if redis.call('HEXISTS', members, clientId) == 1 then return {2} end
if redis.call('HLEN', members) >= tonumber(redis.call('HGET', meta, 'maxParticipants')) then return {-2} end

local role = 'member'
local hostClientId = redis.call('HGET', meta, 'hostClientId') or ''
local hostUserId = redis.call('HGET', meta, 'hostUserId') or ''
if hostClientId == '' and (hostUserId == '' or hostUserId == userId) then
  role = 'host'
  redis.call('HSET', meta, 'hostClientId', clientId)
end

local p = {
  clientId = clientId, userId = (userId ~= '' and userId) or cjson.null, name = name, role = role,
  status = 'online', canControl = (role == 'host'), joinedAt = now, epoch = epoch, announced = 'online',
}
redis.call('HSET', members, clientId, cjson.encode(p))
if userId ~= '' then redis.call('HINCRBY', users, userId, 1) end

local pub = public_participant(p)
local roomId = redis.call('HGET', meta, 'id')
local seq = append_event(meta, log, 'room:participant:joined',
  '{"roomId":' .. cjson.encode(roomId) .. ',"participant":' .. pub .. '}', tonumber(ARGV[6]), tonumber(ARGV[7]))
touch_room(tonumber(ARGV[8]))
local m = redis.call('HMGET', meta, 'inc', 'createdAt')
hook(hooks, ARGV[9], 'msg_' .. roomId .. '_' .. room_incarnation(m[1], m[2]) .. '_' .. seq, 'member.joined',
  '{"roomId":' .. cjson.encode(roomId) .. ',"seq":' .. seq .. ',"participant":' .. pub .. '}')

return {1, seq, pub, redis.call('HGETALL', meta), redis.call('HVALS', members), redis.call('HGETALL', playback)}

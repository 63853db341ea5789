--@include common
-- Creates a room's meta hash unless the id is taken.
-- KEYS[1..6] the room's state keys (see room_keys in common)  KEYS[7] webhook outbox
-- ARGV id code name kind passwordHash maxParticipants createdAt hostUserId roomTtlMs incarnation webhookFilter
-- Returns {1} created, {0} already exists (its keys' TTL refreshed).
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call('EXISTS', meta) == 1 then
  touch_room(tonumber(ARGV[9]))
  return {0}
end
redis.call('HSET', meta, 'id', ARGV[1], 'code', ARGV[2], 'name', ARGV[3], 'kind', ARGV[4],
  'passwordHash', ARGV[5], 'maxParticipants', ARGV[6], 'createdAt', ARGV[7],
  'hostUserId', ARGV[8], 'hostClientId', '', 'seq', 0, 'inc', ARGV[10])
touch_room(tonumber(ARGV[9]))
hook(KEYS[7], ARGV[11], 'msg_' .. ARGV[1] .. '_' .. ARGV[10] .. '_created', 'room.created',
  cjson.encode({ roomId = ARGV[1], code = (ARGV[2] ~= '' and ARGV[2]) or cjson.null, name = ARGV[3], kind = ARGV[4], createdAt = tonumber(ARGV[7]) }))
return {1}

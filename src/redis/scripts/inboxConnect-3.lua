--@include common
-- Records a connected device of a user (for `delivered` in user:message acks, and user presence).
-- Epochs only move forward: a late write of an older connection of the same clientId must not
-- overwrite a newer one. The user's first device (after it was announced offline, or ever) writes
-- user.online to the outbox in the same step.
-- KEYS[1] conns (hash clientId → epoch)  KEYS[2] presence (hash state, gen)  KEYS[3] webhook outbox
-- ARGV clientId epoch ttlMs userId webhookFilter
-- Returns {connections}
local conns, presence, hooks = KEYS[1], KEYS[2], KEYS[3]
local current = tonumber(redis.call('HGET', conns, ARGV[1]) or '-1')
if tonumber(ARGV[2]) > current then redis.call('HSET', conns, ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', conns, ARGV[3])
local n = redis.call('HLEN', conns)
if redis.call('HGET', presence, 'state') ~= 'online' then
  local gen = redis.call('HINCRBY', presence, 'gen', 1)
  redis.call('HSET', presence, 'state', 'online')
  hook(hooks, ARGV[5], 'msg_u' .. redis.sha1hex(ARGV[4]) .. '_' .. gen, 'user.online',
    '{"userId":' .. cjson.encode(ARGV[4]) .. ',"clientId":' .. cjson.encode(ARGV[1]) .. '}')
end
redis.call('PEXPIRE', presence, ARGV[3])
return {n}

--@include common
-- The user's last device went away USER_OFFLINE_GRACE_MS ago (a delayed job): if no device came
-- back meanwhile, the user is offline — user.offline goes to the outbox in the same step. A blip
-- (a device back within the grace) finds a connection and announces nothing.
-- KEYS[1] conns  KEYS[2] presence  KEYS[3] webhook outbox
-- ARGV userId webhookFilter
-- Returns {1} announced offline | {0} nothing to do (a device is back, or already offline)
local conns, presence, hooks = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HLEN', conns) > 0 or redis.call('HGET', presence, 'state') ~= 'online' then return {0} end
local gen = redis.call('HINCRBY', presence, 'gen', 1)
redis.call('HSET', presence, 'state', 'offline')
hook(hooks, ARGV[2], 'msg_u' .. redis.sha1hex(ARGV[1]) .. '_' .. gen, 'user.offline', '{"userId":' .. cjson.encode(ARGV[1]) .. '}')
return {1}

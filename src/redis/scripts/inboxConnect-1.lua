-- Records a connected device of a user (for `delivered` in user:message acks). Epochs only move
-- forward: a late write of an older connection of the same clientId must not overwrite a newer one.
-- KEYS[1] conns (hash clientId → epoch)
-- ARGV clientId epoch ttlMs
-- Returns {connections}
local conns = KEYS[1]
local current = tonumber(redis.call('HGET', conns, ARGV[1]) or '-1')
if tonumber(ARGV[2]) > current then redis.call('HSET', conns, ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', conns, ARGV[3])
return {redis.call('HLEN', conns)}

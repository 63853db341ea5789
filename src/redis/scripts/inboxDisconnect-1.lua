-- A device's socket went away. Only the connection that wrote the entry removes it: the disconnect
-- of a socket replaced by a newer connection of the same clientId finds a newer epoch and keeps it.
-- KEYS[1] conns
-- ARGV clientId epoch
-- Returns {connections}
local conns = KEYS[1]
if tonumber(redis.call('HGET', conns, ARGV[1]) or '-1') == tonumber(ARGV[2]) then
  redis.call('HDEL', conns, ARGV[1])
end
return {redis.call('HLEN', conns)}

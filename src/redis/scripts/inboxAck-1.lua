-- Removes acknowledged messages from the user's own inbox. An id carries its timestamp, which is
-- the member's score, so each lookup reads only the members of that millisecond instead of
-- scanning the inbox. Unknown or already removed ids count nothing (acks are idempotent).
-- KEYS[1] inbox
-- ARGV id1 ts1 id2 ts2 ...
-- Returns {removed}
local inbox = KEYS[1]
local removed = 0
for i = 1, #ARGV, 2 do
  local id, ts = ARGV[i], ARGV[i + 1]
  for _, m in ipairs(redis.call('ZRANGE', inbox, ts, ts, 'BYSCORE')) do
    local ok, msg = pcall(cjson.decode, m)
    if ok and msg.id == id then removed = removed + redis.call('ZREM', inbox, m) end
  end
end
return {removed}

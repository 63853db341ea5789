-- Everything still in a user's inbox, oldest first, after dropping entries older than the TTL
-- (the key TTL only bounds the newest entry; each entry ages out on its own).
-- KEYS[1] inbox
-- ARGV now ttlMs
-- Returns {dropped, member...}
local inbox = KEYS[1]
local dropped = redis.call('ZREMRANGEBYSCORE', inbox, '-inf', '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[2])))
local out = redis.call('ZRANGE', inbox, 0, -1)
table.insert(out, 1, dropped)
return out

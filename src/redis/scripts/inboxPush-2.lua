-- Stores one direct message in a user's inbox: age-trims, appends, bounds the length (oldest
-- dropped first) and refreshes the key TTL in one step, so concurrent senders on different
-- workers can never push the inbox past its bound. A resend with the same dedup key while the
-- original is still unacknowledged returns the original instead of storing a second copy.
-- KEYS[1] inbox (sorted set by ts; members are message JSON)  KEYS[2] conns (hash clientId → epoch)
-- ARGV memberJson ts ttlMs maxMessages dedupPrefix('' = none) dedupSinceMs
--   dedupPrefix is the exact leading text `{"dk":<key>,` of a member built with that key: a prefix
--   match (not a substring search) so app data can never impersonate a dedup key.
-- Returns {1, connections, dropped} stored | {2, connections, originalMemberJson} duplicate
local inbox, conns = KEYS[1], KEYS[2]
local ts, ttl, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix = ARGV[5]
local connections = redis.call('HLEN', conns)
if prefix ~= '' then
  local recent = redis.call('ZRANGE', inbox, ARGV[6], '+inf', 'BYSCORE')
  for _, m in ipairs(recent) do
    if string.sub(m, 1, #prefix) == prefix then return {2, connections, m} end
  end
end
local dropped = redis.call('ZREMRANGEBYSCORE', inbox, '-inf', '(' .. (ts - ttl))
redis.call('ZADD', inbox, ts, ARGV[1])
local n = redis.call('ZCARD', inbox)
if n > max then dropped = dropped + redis.call('ZREMRANGEBYRANK', inbox, 0, n - max - 1) end
redis.call('PEXPIRE', inbox, ttl)
return {1, connections, dropped}

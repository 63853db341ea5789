-- The batched grace-period eviction reads whom to evict: the members of the room's away set whose
-- grace period ended by `now`. Entries of members that came back, left or were evicted under
-- another path are stale: removed here. The eviction of each due member goes through leaveRoom
-- (mode evict, with the epoch read here), which takes it out of the away set; an entry leaves the
-- set only once its member is no longer away, so a job that dies half-way is simply run again.
-- KEYS[1] members  KEYS[2] away (sorted set clientId -> evict-at ms)
-- ARGV now limit
-- Returns {{clientId, epoch, ...}, nextEvictAt ('' = none left), more (1: more due than limit)}
local members, away = KEYS[1], KEYS[2]
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = {}
local found = 0
local more = 0
local batch = redis.call('ZRANGE', away, '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
for _, clientId in ipairs(batch) do
  local raw = redis.call('HGET', members, clientId)
  local p = raw and cjson.decode(raw)
  if p and p.status == 'away' then
    table.insert(due, clientId)
    table.insert(due, tostring(p.epoch))
    found = found + 1
  else
    redis.call('ZREM', away, clientId)
  end
end
if #batch == limit then more = 1 end
local nextAt = ''
local after = redis.call('ZRANGE', away, '(' .. now, '+inf', 'BYSCORE', 'LIMIT', 0, 1, 'WITHSCORES')
if #after > 0 then nextAt = after[2] end
return {due, nextAt, more}

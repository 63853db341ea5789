--@include common
-- Events after fromSeq, if the log still reaches back that far and the position belongs to this
-- incarnation of the room. No partial recovery: when the oldest retained entry is past
-- fromSeq + 1 the caller must fall back to a snapshot.
-- KEYS[1] meta  KEYS[2] log
-- ARGV fromSeq limit catchupTtlMs incarnation('' = the client did not say)
-- Returns {1, seq, more, entries, incarnation} recovered
--         {0, seq, incarnation} log does not reach back, or another incarnation | {-1} no room
local meta, log = KEYS[1], KEYS[2]
local fromSeq, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
-- Every room's meta has a seq (0 at creation): no seq, no room.
local state = redis.call('HMGET', meta, 'seq', 'inc', 'createdAt')
if not state[1] then return {-1} end
local seq = tonumber(state[1]) or 0
local inc = room_incarnation(state[2], state[3])
if ARGV[4] ~= '' and ARGV[4] ~= inc then return {0, seq, inc} end
-- Nothing to read (the common case of a join's fill): no trimming, no clock.
if fromSeq == seq then return {1, seq, 0, {}, inc} end
-- A client ahead of the room saw an earlier incarnation of it (expired and recreated).
if fromSeq > seq then return {0, seq, inc} end
trim_log_age(log, now_ms() - tonumber(ARGV[3]))
local first = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
if #first == 0 or tonumber(first[2]) > fromSeq + 1 then return {0, seq, inc} end
local entries = redis.call('ZRANGE', log, '(' .. fromSeq, '+inf', 'BYSCORE', 'LIMIT', 0, limit)
local more = 0
if #entries == limit and fromSeq + limit < seq then more = 1 end
return {1, seq, more, entries, inc}

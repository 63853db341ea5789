--@include common
-- Events after fromSeq, if the log still reaches back that far. No partial recovery: when the
-- oldest retained entry is past fromSeq + 1 the caller must fall back to a snapshot.
-- KEYS[1] meta  KEYS[2] log
-- ARGV fromSeq limit catchupTtlMs
-- Returns {1, seq, more, entries} recovered | {0, seq} log does not reach back | {-1} no room
local meta, log = KEYS[1], KEYS[2]
if redis.call('EXISTS', meta) == 0 then return {-1} end
local fromSeq, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local seq = tonumber(redis.call('HGET', meta, 'seq')) or 0
trim_log_age(log, now_ms() - tonumber(ARGV[3]))
if fromSeq == seq then return {1, seq, 0, {}} end
-- A client ahead of the room saw an earlier incarnation of it (expired and recreated).
if fromSeq > seq then return {0, seq} end
local first = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
if #first == 0 or tonumber(first[2]) > fromSeq + 1 then return {0, seq} end
local entries = redis.call('ZRANGE', log, '(' .. fromSeq, '+inf', 'BYSCORE', 'LIMIT', 0, limit)
local more = 0
if #entries == limit and fromSeq + limit < seq then more = 1 end
return {1, seq, more, entries}

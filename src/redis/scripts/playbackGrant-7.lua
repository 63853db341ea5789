--@include common
-- The host grants or revokes a member's playback control: the participant's canControl flag is
-- rewritten and a sequenced playback:control appended in one step.
-- Rules mirror src/playback/rules.ts (canGrantControl).
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)  KEYS[7] log
-- ARGV callerClientId targetClientId allowed(1|0) maxEvents catchupTtlMs roomTtlMs
--      channel head tail: the change's broadcast (channel '' = none, see append_event in common)
-- Returns {1, seq, payloadJson} | {0} target is not a member | {2} the host cannot lose control
--         {-1} no room | {-3} caller not a member | {-7} caller is not the host (or program room)
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local log = KEYS[7]
local caller, target, allowed = ARGV[1], ARGV[2], ARGV[3] == '1'

if redis.call('EXISTS', meta) == 0 then return {-1} end
if redis.call('HGET', meta, 'kind') == 'program' then return {-7} end
local rawCaller = redis.call('HGET', members, caller)
if not rawCaller then return {-3} end
if cjson.decode(rawCaller).role ~= 'host' then return {-7} end
local rawTarget = redis.call('HGET', members, target)
if not rawTarget then return {0} end
local t = cjson.decode(rawTarget)
if t.role == 'host' and not allowed then return {2} end

t.canControl = allowed or t.role == 'host'
redis.call('HSET', members, target, cjson.encode(t))
local payload = cjson.encode({ roomId = redis.call('HGET', meta, 'id'), clientId = target, canControl = t.canControl })
local seq = append_event(meta, log, 'playback:control', payload, tonumber(ARGV[4]), tonumber(ARGV[5]), nil, 7)
touch_room(tonumber(ARGV[6]))
return {1, seq, payload}

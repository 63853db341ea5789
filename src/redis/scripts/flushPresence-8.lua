--@include common
-- The batched presence flush of one room: takes every pending change at once and announces only
-- members whose status differs from what the room was last told (a blip shorter than the window
-- announces nothing). Taking the set and clearing the flag happen atomically, so a rejoin that
-- lands while this runs finds no flag and schedules the next flush: nobody is left out.
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)  KEYS[7] flush  KEYS[8] log
-- ARGV maxEvents catchupTtlMs
-- Returns {1, seq, payloadJson, changes} | {0} nothing to announce
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local flush, log = KEYS[7], KEYS[8]
local entries = redis.call('HGETALL', pending)
redis.call('DEL', pending, flush)
if redis.call('EXISTS', meta) == 0 then return {0} end

local returned, away = {}, {}
for i = 1, #entries, 2 do
  local raw = redis.call('HGET', members, entries[i])
  if raw then
    local p = cjson.decode(raw)
    if p.status ~= p.announced then
      p.announced = p.status
      redis.call('HSET', members, entries[i], cjson.encode(p))
      if p.status == 'online' then table.insert(returned, p.clientId) else table.insert(away, p.clientId) end
    end
  end
end
if #returned + #away == 0 then return {0} end

local payload = '{"roomId":' .. cjson.encode(redis.call('HGET', meta, 'id')) ..
  ',"returned":' .. json_array(returned) .. ',"away":' .. json_array(away) .. '}'
local seq = append_event(meta, log, 'room:presence', payload, tonumber(ARGV[1]), tonumber(ARGV[2]))
return {1, seq, payload, #returned + #away}

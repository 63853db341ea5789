--@include common
-- The batched presence flush of one room: takes every pending change at once and announces only
-- members whose status differs from what the room was last told (a blip shorter than the window
-- announces nothing). Taking the set and clearing the flag happen atomically, so a rejoin that
-- lands while this runs finds no flag and schedules the next flush: nobody is left out.
-- Members admitted by a batched join (joinRoom above JOIN_BATCH_THRESHOLD) have never been
-- announced (no `announced` status): they go out in `joined`, as they are now (status included),
-- whatever happened to them since within the window. One that left meanwhile is not a member any
-- more and is not announced at all.
-- KEYS[1..6] the room's state keys: meta members users playback rtt pending (see room_keys in common)  KEYS[7] flush  KEYS[8] log
-- ARGV maxEvents catchupTtlMs channel head tail (the batch's broadcast; channel '' = none, see append_event in common)
-- Returns {1, seq, payloadJson, changes} | {0} nothing to announce
local meta, members, users, playback, rtt, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local flush, log = KEYS[7], KEYS[8]
local entries = redis.call('HGETALL', pending)
redis.call('DEL', pending, flush)
local roomId = redis.call('HGET', meta, 'id')
if not roomId then return {0} end

local returned, away, joined = {}, {}, {}
for i = 1, #entries, 2 do
  local raw = redis.call('HGET', members, entries[i])
  if raw then
    local p = cjson.decode(raw)
    if p.announced == nil then
      p.announced = p.status
      redis.call('HSET', members, entries[i], cjson.encode(p))
      table.insert(joined, public_participant(p))
    elseif p.status ~= p.announced then
      p.announced = p.status
      redis.call('HSET', members, entries[i], cjson.encode(p))
      if p.status == 'online' then table.insert(returned, p.clientId) else table.insert(away, p.clientId) end
    end
  end
end
local changes = #returned + #away + #joined
if changes == 0 then return {0} end

-- joined holds participant JSON already (public_participant): joined as text, not re-encoded.
local payload = '{"roomId":' .. cjson.encode(roomId) .. ',"returned":' .. json_array(returned) ..
  ',"away":' .. json_array(away) .. ',"joined":[' .. table.concat(joined, ',') .. ']}'
local seq = append_event(meta, log, 'room:presence', payload, tonumber(ARGV[1]), tonumber(ARGV[2]), nil, 3)
return {1, seq, payload, changes}

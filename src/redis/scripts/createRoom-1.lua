-- Creates a room's meta hash unless the id is taken.
-- KEYS[1] meta
-- ARGV id code name kind passwordHash maxParticipants createdAt hostUserId roomTtlMs incarnation
-- Returns {1} created, {0} already exists (TTL refreshed).
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
  return {0}
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'code', ARGV[2], 'name', ARGV[3], 'kind', ARGV[4],
  'passwordHash', ARGV[5], 'maxParticipants', ARGV[6], 'createdAt', ARGV[7],
  'hostUserId', ARGV[8], 'hostClientId', '', 'seq', 0, 'inc', ARGV[10])
redis.call('PEXPIRE', KEYS[1], ARGV[9])
return {1}

-- Presence: one sidecar instance's entry for a user in a channel is removed (its last
-- connection there ended and the grace passed). Keys as in presence_join.lua.
-- ARGV[1] instance id, ARGV[2] user id
-- -> {left, vacated, info}: left = 1 when it was the user's last entry of any instance
--    (a leave, published once), vacated = 1 when the channel has no member left.
local entry = ARGV[1] .. '|' .. ARGV[2]
if redis.call('ZREM', KEYS[1], entry) == 0 then
  return {0, 0, ''}
end
if redis.call('HINCRBY', KEYS[3], ARGV[2], -1) > 0 then
  return {0, 0, ''}
end
local info = redis.call('HGET', KEYS[2], ARGV[2]) or ''
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
local vacated = 0
if redis.call('HLEN', KEYS[3]) == 0 then
  vacated = 1
end
redis.call('PUBLISH', KEYS[4], 'l' .. string.len(ARGV[2]) .. ':' .. ARGV[2])
return {1, vacated, info}

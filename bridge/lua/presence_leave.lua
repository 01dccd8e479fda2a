-- Presence: one sidecar instance's entry for a user in a channel is removed (its last
-- connection there ended and the grace passed). Keys as in presence_join.lua.
-- ARGV[1] instance id, ARGV[2] user id, ARGV[3] channel, ARGV[4] "1" when the entry was
-- in Redis and this leave waited for Redis to be reachable again, ARGV[5] "PUBLISH" or
-- "SPUBLISH", ARGV[6] the notices' pub/sub channel
-- -> {left, vacated, info}: left = 1 when it was the user's last entry of any instance
--    (a leave, published once), vacated = 1 when the channel has no member left.
--    A waiting leave whose entry is gone without having been swept (Redis restarted
--    without it) is still a leave when no other sidecar has the user: nobody else
--    can report it.
local entry = ARGV[1] .. '|' .. ARGV[2]
local function vacate()
  if redis.call('ZCARD', KEYS[1]) == 0 then
    redis.call('ZREM', KEYS[5], ARGV[3])
  end
  if redis.call('HLEN', KEYS[3]) == 0 then
    -- Kept an hour, not deleted: a channel occupied again goes on counting, so its
    -- numbers never go back (a new key starts at the time, which may not have moved).
    redis.call('PEXPIRE', KEYS[6], 3600000)
    return 1
  end
  return 0
end
-- "l<version>:<length of user>:<user>" (the version as in presence_join.lua).
local function publish_leave()
  local version = redis.call('INCR', KEYS[6])
  if version == 1 then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    version = redis.call('INCRBY', KEYS[6], string.format('%.0f', now * 1000 - 1))
  end
  redis.call(ARGV[5], ARGV[6], 'l' .. string.format('%.0f', version) .. ':' .. string.len(ARGV[2]) .. ':' .. ARGV[2])
end
if redis.call('ZREM', KEYS[1], entry) == 0 then
  if ARGV[4] == '1' and not redis.call('ZSCORE', KEYS[4], entry) and
      redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
    publish_leave()
    return {1, vacate(), ''}
  end
  return {0, 0, ''}
end
if redis.call('HINCRBY', KEYS[3], ARGV[2], -1) > 0 then
  return {0, 0, ''}
end
local info = redis.call('HGET', KEYS[2], ARGV[2]) or ''
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
publish_leave()
return {1, vacate(), info}

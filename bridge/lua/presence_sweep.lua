-- Presence: removes the entries whose expiry passed (their sidecar stopped refreshing
-- them: killed, or cut off from Redis), in one atomic step, so each user's leave is
-- decided once whichever sidecars sweep at the same time. Keys as in presence_join.lua.
-- ARGV[1] most entries to remove in this call, ARGV[2] channel
-- -> {vacated, user1, info1, user2, info2, ...}: the users that left (published), and
--    vacated = 1 when that emptied the channel. A channel without entries leaves
--    comet:presence:channels. Swept entries are remembered for an hour (KEYS[5]): their
--    sidecar, back, joins them as new members (events), not as entries Redis lost.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {0}
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - 3600000)
end
for _, entry in ipairs(expired) do
  redis.call('ZREM', KEYS[1], entry)
  redis.call('ZADD', KEYS[5], now, entry)
  local bar = string.find(entry, '|', 1, true)
  local user = string.sub(entry, bar + 1)
  if redis.call('HINCRBY', KEYS[3], user, -1) <= 0 then
    local info = redis.call('HGET', KEYS[2], user) or ''
    redis.call('HDEL', KEYS[3], user)
    redis.call('HDEL', KEYS[2], user)
    redis.call('PUBLISH', KEYS[4], 'l' .. string.len(user) .. ':' .. user)
    table.insert(out, user)
    table.insert(out, info)
  end
end
if #expired > 0 then
  redis.call('PEXPIRE', KEYS[5], 3600000)
end
if #out > 1 and redis.call('HLEN', KEYS[3]) == 0 then
  out[1] = 1
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[6], ARGV[2])
end
return out

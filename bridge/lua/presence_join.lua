-- Presence: one sidecar instance's entry for a user in a channel is added (or its
-- expiry refreshed). docs/protocol.md, "Presence across sidecars (Redis)".
--
-- KEYS[1] comet:{<ch>}:presence         sorted set: "<instance>|<user>" -> expiry (ms, Redis TIME)
-- KEYS[2] comet:{<ch>}:presence:info    hash: user -> info (JSON object text, "" = none)
-- KEYS[3] comet:{<ch>}:presence:count   hash: user -> number of instance entries
-- KEYS[4] comet:{<ch>}:presence:events  pub/sub channel of join/leave notices
-- KEYS[5] comet:{<ch>}:presence:swept   sorted set: entries swept (expired) -> when (ms)
-- KEYS[6] comet:presence:channels       set of channels with entries (what sidecars sweep)
-- ARGV[1] instance id, ARGV[2] user id, ARGV[3] info, ARGV[4] entry ttl (ms),
-- ARGV[5] channel, ARGV[6] "1" when this entry was in Redis before (a refresh)
-- -> {joined, occupied}: joined = 1 when this is the user's first entry of any instance
--    (a join, published once), 2 when it is such an entry put back after Redis lost it
--    (restarted empty: published, but no event: the app heard of the member already),
--    occupied = 1 when the user is the channel's only member.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entry = ARGV[1] .. '|' .. ARGV[2]
-- In the same script as the entry, so that a leave emptying the channel (SREM) can never
-- drop a channel that has an entry again from the sweep.
redis.call('SADD', KEYS[6], ARGV[5])
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), entry)
if added == 0 then
  return {0, 0}
end
local restored = ARGV[6] == '1' and not redis.call('ZSCORE', KEYS[5], entry)
redis.call('ZREM', KEYS[5], entry)
local n = redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if n ~= 1 then
  return {0, 0}
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local occupied = 0
if redis.call('HLEN', KEYS[3]) == 1 then
  occupied = 1
end
-- "j<length of user>:<user><info>": user ids may hold any byte.
redis.call('PUBLISH', KEYS[4], 'j' .. string.len(ARGV[2]) .. ':' .. ARGV[2] .. ARGV[3])
if restored then
  return {2, occupied}
end
return {1, occupied}

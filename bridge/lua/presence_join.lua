-- Presence: one sidecar instance's entry for a user in a channel is added (or its
-- expiry refreshed). docs/protocol.md, "Presence across sidecars (Redis)".
--
-- KEYS[1] comet:{<ch>}:presence         sorted set: "<instance>|<user>" -> expiry (ms, Redis TIME)
-- KEYS[2] comet:{<ch>}:presence:info    hash: user -> info (JSON object text, "" = none)
-- KEYS[3] comet:{<ch>}:presence:count   hash: user -> number of instance entries
-- KEYS[4] comet:{<ch>}:presence:swept   sorted set: entries swept (expired) -> when (ms)
-- KEYS[5] comet:presence:due:{<tag>}    sorted set, one per Cluster slot (the tag hashes to
--                                       the channel's slot): channel -> when its earliest
--                                       entry may expire (what presence_sweep.lua visits)
-- KEYS[6] comet:{<ch>}:presence:version the number of the channel's last notice: each
--                                       notice takes the next; a new key starts at the
--                                       time in ms x 1000; a vacated channel's expires
--                                       after an hour
-- ARGV[1] instance id, ARGV[2] user id, ARGV[3] info, ARGV[4] entry ttl (ms),
-- ARGV[5] channel, ARGV[6] "1" when this entry was in Redis before (a refresh),
-- ARGV[7] "PUBLISH", or "SPUBLISH" on a Redis Cluster, ARGV[8] the notices' pub/sub
-- channel comet:{<ch>}:presence:events (not a key: a Cluster would look for it during a
-- slot migration)
-- -> {joined, occupied, indexed}: joined = 1 when this is the user's first entry of any
--    instance (a join, published once), 2 when it is such an entry put back after Redis
--    lost it (restarted empty: published, but no event: the app heard of the member
--    already), occupied = 1 when the user is the channel's only member, indexed = 1 when
--    the channel was not in its slot's due index.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entry = ARGV[1] .. '|' .. ARGV[2]
local expiry = now + tonumber(ARGV[4])
local added = redis.call('ZADD', KEYS[1], expiry, entry)
-- LT: a refresh never moves the channel's due time later (the sweep does, once it has
-- looked); in the same script as the entry, so a leave emptying the channel can never
-- take a channel that has an entry again out of the index.
local indexed = redis.call('ZADD', KEYS[5], 'LT', expiry, ARGV[5])
if added == 0 then
  return {0, 0, indexed}
end
local restored = ARGV[6] == '1' and not redis.call('ZSCORE', KEYS[4], entry)
redis.call('ZREM', KEYS[4], entry)
local n = redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if n ~= 1 then
  return {0, 0, indexed}
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local occupied = 0
if redis.call('HLEN', KEYS[3]) == 1 then
  occupied = 1
  redis.call('PERSIST', KEYS[6])  -- the hour a vacated channel's number is kept is over
end
-- "j<version>:<length of user>:<user><info>": user ids may hold any byte.
-- (%.0f: Lua would write a 16-digit number with an exponent.)
local version = redis.call('INCR', KEYS[6])
if version == 1 then
  version = redis.call('INCRBY', KEYS[6], string.format('%.0f', now * 1000 - 1))
end
redis.call(ARGV[7], ARGV[8], 'j' .. string.format('%.0f', version) .. ':' .. string.len(ARGV[2]) .. ':' .. ARGV[2] .. ARGV[3])
if restored then
  return {2, occupied, indexed}
end
return {1, occupied, indexed}

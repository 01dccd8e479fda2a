-- Presence: visits the channels of one Cluster slot whose earliest entry may have
-- expired (their due time in the slot's index passed) and removes the entries whose
-- expiry passed (their sidecar stopped refreshing them: killed, or cut off from Redis),
-- in one atomic step, so each user's leave is decided once whichever sidecars sweep at
-- the same time. docs/protocol.md, "Presence across sidecars (Redis)".
--
-- KEYS[1] comet:presence:due:{<tag>}  the slot's index: channel -> due time (ms)
-- The channels' own keys (presence_join.lua) are named here, not in KEYS: there may be
-- any number, and they all hash to KEYS[1]'s slot.
-- ARGV[1] most entries to remove per channel, ARGV[2] most channels to visit,
-- ARGV[3] "PUBLISH" or "SPUBLISH"
-- -> {next, channel, vacated, n, user1, info1, ..., user_n, info_n, channel, ...}:
--    next = ms until the slot's next channel is due (-1 when its index is empty); then
--    each channel where users left (published): vacated = 1 when it has no member left.
--    A visited channel's due time becomes its earliest entry's expiry; a channel without
--    entries leaves the index. Swept entries are remembered for an hour (the channel's
--    :swept key): their sidecar, back, joins them as new members (events), not as
--    entries Redis lost.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
-- Every key a visit may write is looked at first: on a Cluster slot that is migrating, a
-- key that is not (or no longer) on this node fails the script here, before it changed
-- anything, instead of halfway (scripts are not rolled back). The slot is swept once
-- it has moved.
for _, channel in ipairs(due) do
  local entries = 'comet:{' .. channel .. '}:presence'
  redis.call('EXISTS', entries, entries .. ':info', entries .. ':count', entries .. ':swept',
    entries .. ':version')
end
local out = {-1}
for _, channel in ipairs(due) do
  local entries = 'comet:{' .. channel .. '}:presence'
  local info_key, count_key = entries .. ':info', entries .. ':count'
  local swept, version_key = entries .. ':swept', entries .. ':version'
  local expired = redis.call('ZRANGEBYSCORE', entries, '-inf', now, 'LIMIT', 0, limit)
  local left = {}
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', swept, '-inf', now - 3600000)
  end
  for _, entry in ipairs(expired) do
    redis.call('ZREM', entries, entry)
    redis.call('ZADD', swept, now, entry)
    local bar = string.find(entry, '|', 1, true)
    local user = string.sub(entry, bar + 1)
    if redis.call('HINCRBY', count_key, user, -1) <= 0 then
      table.insert(left, user)
      table.insert(left, redis.call('HGET', info_key, user) or '')
      redis.call('HDEL', count_key, user)
      redis.call('HDEL', info_key, user)
      local version = redis.call('INCR', version_key)
      if version == 1 then
        version = redis.call('INCRBY', version_key, string.format('%.0f', now * 1000 - 1))
      end
      redis.call(ARGV[3], entries .. ':events', 'l' .. string.format('%.0f', version) .. ':' .. string.len(user) .. ':' .. user)
    end
  end
  if #expired > 0 then
    redis.call('PEXPIRE', swept, 3600000)
  end
  local first = redis.call('ZRANGE', entries, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', KEYS[1], channel)
  else
    redis.call('ZADD', KEYS[1], first[2], channel)
  end
  if #left > 0 then
    local vacated = 0
    if redis.call('HLEN', count_key) == 0 then
      vacated = 1
      redis.call('PEXPIRE', version_key, 3600000)  -- as in presence_leave.lua
    end
    table.insert(out, channel)
    table.insert(out, vacated)
    table.insert(out, #left / 2)
    for _, v in ipairs(left) do
      table.insert(out, v)
    end
  end
end
local next_due = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #next_due > 0 then
  out[1] = math.max(0, tonumber(next_due[2]) - now)
end
return out

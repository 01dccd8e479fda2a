-- Presence: comet:{presence}:slots (KEYS[1]), the Cluster slots whose due index
-- (comet:presence:due:{<tag>}) has channels -> when the slot is next due (ms, this
-- node's TIME). KEYS[2] comet:{presence}:audit: how many claims were made (the audit's
-- cursor). One sidecar at a time sweeps a slot: a claim moves the slot's due time a
-- lease ahead and marks it with half a millisecond (no other due time has one), so a
-- due time set meanwhile (a join touching the slot) shows. docs/protocol.md, "Presence
-- across sidecars (Redis)".
--
-- ARGV[1] = "touch", ARGV[2] = offset (ms), ARGV[3..] = slots:
--   each slot is due by now + offset at the latest (added when missing; a claimed slot
--   takes it too, so that its sweeper does not drop it). -> number of slots changed
-- ARGV[1] = "claim", ARGV[2] = most slots, ARGV[3] = lease (ms), ARGV[4] = audit count:
--   -> {lease, n, slot_1, ..., slot_n, audit_1, ...}: n slots due now, each now held for
--      the lease (the lease as text: it has the half millisecond); then, of the next
--      audit-count slots in turn (each claim takes the next ones, round the 16384), those
--      not listed: the claimant looks whether their due index has channels, and touches
--      them if so, so that a list that lost slots (its node failed over to a replica
--      that lagged) is whole again within a round of audits.
-- ARGV[1] = "done", ARGV[2] = lease, ARGV[3..] = pairs of slot, ms until due (-1 = its
--   index is empty): a slot still held by that lease takes the new due time (leaves when
--   empty); one touched meanwhile keeps the earlier of both. -> number of slots changed
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local changed = 0
if op == 'touch' then
  local due = now + tonumber(ARGV[2])
  for i = 3, #ARGV do
    local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
    if not score or due < tonumber(score) or tonumber(score) % 1 ~= 0 then
      redis.call('ZADD', KEYS[1], due, ARGV[i])
      changed = changed + 1
    end
  end
  return changed
end
if op == 'claim' then
  local slots = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
  local lease = now + tonumber(ARGV[3]) + 0.5
  local out = {string.format('%.1f', lease), #slots}
  for _, slot in ipairs(slots) do
    redis.call('ZADD', KEYS[1], lease, slot)
    table.insert(out, slot)
  end
  local count = tonumber(ARGV[4])
  local first = ((redis.call('INCR', KEYS[2]) - 1) * count) % 16384
  for i = 0, count - 1 do
    local slot = tostring((first + i) % 16384)
    if not redis.call('ZSCORE', KEYS[1], slot) then
      table.insert(out, slot)
    end
  end
  return out
end
if op == 'done' then
  local lease = tonumber(ARGV[2])
  for i = 3, #ARGV - 1, 2 do
    local slot, offset = ARGV[i], tonumber(ARGV[i + 1])
    local score = redis.call('ZSCORE', KEYS[1], slot)
    if score and tonumber(score) == lease then
      if offset < 0 then
        redis.call('ZREM', KEYS[1], slot)
      else
        redis.call('ZADD', KEYS[1], now + offset, slot)
      end
      changed = changed + 1
    elseif offset >= 0 and (not score or now + offset < tonumber(score)) then
      redis.call('ZADD', KEYS[1], now + offset, slot)
      changed = changed + 1
    end
  end
  return changed
end
return redis.error_reply('presence_slots.lua: unknown operation ' .. tostring(op))

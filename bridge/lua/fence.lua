-- Comet Sidecar fence script: moves a channel to a new epoch when a sidecar finds that
-- Redis contradicts what it already delivered in the current one (a promoted replica
-- that missed writes: its head is behind, or a message it holds at a delivered id
-- differs). Publishing on would reuse those ids for other messages; a new epoch makes
-- every client reset (epoch-changed) instead. Compare-and-set on the epoch, so when
-- several sidecars find the same contradiction the channel moves once.
--
-- KEYS[1] comet:{<channel>}:seq
-- KEYS[2] comet:{<channel>}:epoch
-- KEYS[3] comet:{<channel>}:log
-- ARGV[1] the epoch found contradicted
-- Returns the channel's epoch afterwards (new, or whatever another sidecar set).

local epoch = redis.call('GET', KEYS[2])
if epoch ~= ARGV[1] then return epoch or '' end
local t = redis.call('TIME')
local seconds, micros = tonumber(t[1]), tonumber(t[2])
local fresh = string.format('%x%06x', seconds, micros)
if fresh == epoch then fresh = string.format('%x%06x', seconds, (micros + 1) % 1000000) end
-- The ids go on from the sequence (never back), in the new epoch; the old epoch's
-- entries can never be served again.
redis.call('SET', KEYS[2], fresh, 'KEEPTTL')
redis.call('DEL', KEYS[3])
return fresh

-- Comet Sidecar history script: a channel's epoch, head id and retained messages in
-- one atomic read, so a sidecar can (re)build its view of a channel after subscribing.
--
-- KEYS[1] comet:{<channel>}:seq
-- KEYS[2] comet:{<channel>}:epoch
-- KEYS[3] comet:{<channel>}:log
-- ARGV[1] after: return only messages with id > after (0 = no lower bound)
-- ARGV[2] count: at most this many messages, the newest ones
-- ARGV[3] the epoch the caller knows; when the channel's epoch differs, `after` means
--         nothing and the newest messages are returned instead
-- Returns { epoch or "", head id, { {id, data, event, prev, ts}, ... } oldest first }.

local epoch = redis.call('GET', KEYS[2]) or ''
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
if ARGV[3] ~= epoch then after = 0 end
local count = tonumber(ARGV[2])
-- The newest `count` entries after `after`: when more than that were missed, the older
-- ones are beyond the retained history anyway and the caller reports the gap.
local low = '-'
if after > 0 then low = (after + 1) .. '-0' end
local entries = redis.call('XREVRANGE', KEYS[3], '+', low, 'COUNT', count)
local n = #entries
for i = 1, math.floor(n / 2) do
  entries[i], entries[n - i + 1] = entries[n - i + 1], entries[i]
end
local out = {}
for i, entry in ipairs(entries) do
  local fields = {}
  for j = 1, #entry[2], 2 do fields[entry[2][j]] = entry[2][j + 1] end
  -- Entries of an older epoch (left behind if the epoch key alone was lost) are skipped.
  if fields['epoch'] == epoch then
    local id = string.match(entry[1], '^(%d+)-')
    out[#out + 1] = { id, fields['data'] or '', fields['event'] or '', fields['prev'] or '0',
                      fields['ts'] or '0' }
  end
end
return { epoch, head, out }

-- capacity.lua: a channel's capacity (channels[].capacity), shared by every
-- momentd instance: reserves moments for a batch before it decides, and
-- gives back what the batch did not emit.
--
-- KEYS     one counter per limit of the channel, for the slot now:
--          "<prefix>:capacity:{<channel>}:<per ms>:<slot>" (one hash tag:
--          one node of a cluster)
-- ARGV[1]  how many to give back first (what an earlier reservation on
--          these counters did not use; 0: none)
-- ARGV[2]  how many to reserve (0: none, only give back)
-- then     per key: the limit's max, the counter's TTL in ms (the slot's
--          end and a margin)
--
-- A counter never goes below 0, and one that expired (its slot is over) is
-- not brought back by a give-back. Returns {granted, the 1-based index of
-- the limit with the least left after it}: the caller holds what it was
-- not granted until that limit's slot ends.
local back, want = tonumber(ARGV[1]), tonumber(ARGV[2])
if back > 0 then
  for _, k in ipairs(KEYS) do
    local used = tonumber(redis.call('GET', k) or '-1')
    if used > 0 then
      redis.call('SET', k, math.max(used - back, 0), 'KEEPTTL')
    end
  end
end
local grant, tightest, least = want, 1, nil
for i, k in ipairs(KEYS) do
  local left = tonumber(ARGV[1 + 2 * i]) - tonumber(redis.call('GET', k) or '0')
  if left < 0 then left = 0 end
  if left < grant then grant = left end
  if least == nil or left < least then least, tightest = left, i end
end
if grant > 0 then
  for i, k in ipairs(KEYS) do
    redis.call('INCRBY', k, grant)
    redis.call('PEXPIRE', k, ARGV[2 + 2 * i])
  end
end
return {grant, tightest}

-- apply.lua: applies one batch of one customer's state changes atomically.
--
-- KEYS[1]  the customer's hash, "<prefix>:{<customer_id>}"
-- KEYS[2]  its outbox hash, "<prefix>:{<customer_id>}:x" (same slot)
-- ARGV[1]  TTL of the hash in milliseconds (refreshed on every apply)
-- ARGV[2]  number W of offset watermarks that follow
-- ARGV[3 .. 3+3W-1]  W triples: field ("w:<topic>:<partition>"), the value the
--          caller read before deciding ("-1" when absent), the new value
-- then     triples: op ("S" HSET, "I" HINCRBY, "D" HDEL on KEYS[1]; "X" HSET on
--          KEYS[2]), field, value
--
-- Returns 1 when applied, 0 when a watermark no longer has the value the
-- caller read (another consumer applied these offsets meanwhile, e.g. during
-- a rebalance): then nothing is written and the caller re-reads and decides
-- again. Cost is constant per operation; the script never scans the hash.
local key = KEYS[1]
local nwm = tonumber(ARGV[2])
local i = 3
for _ = 1, nwm do
  local cur = redis.call('HGET', key, ARGV[i])
  if (cur or '-1') ~= ARGV[i + 1] then
    return 0
  end
  i = i + 3
end
local first_op = i
i = 3
for _ = 1, nwm do
  redis.call('HSET', key, ARGV[i], ARGV[i + 2])
  i = i + 3
end
i = first_op
while i + 2 <= #ARGV do
  local op, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'S' then
    redis.call('HSET', key, field, value)
  elseif op == 'I' then
    redis.call('HINCRBY', key, field, value)
  elseif op == 'D' then
    redis.call('HDEL', key, field)
  elseif op == 'X' then
    redis.call('HSET', KEYS[2], field, value)
  else
    return redis.error_reply('apply.lua: unknown op ' .. tostring(op))
  end
  i = i + 3
end
redis.call('PEXPIRE', key, ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return 1

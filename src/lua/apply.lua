-- apply.lua: applies one batch of one customer's state changes atomically.
--
-- KEYS[1]  the customer's hash, "<prefix>:{<customer_id>}" (or a contact
--          point's, "<prefix>:{cp:<id>}")
-- KEYS[2]  its outbox hash, "<KEYS[1]>:x" (same slot)
-- ARGV[1]  TTL of the hash in milliseconds (refreshed on every apply); "0"
--          keeps it forever (an opted-out customer must stay opted out)
-- ARGV[2]  the version ("v" field) the caller read before deciding, "0" when
--          absent; "-" skips the check (contact-point keys)
-- then     triples: op ("S" HSET, "I" HINCRBY, "D" HDEL on KEYS[1]; "X" HSET on
--          KEYS[2]), field, value
--
-- Returns 1 when applied, 0 when the version is no longer the one the caller
-- read: another consumer changed this customer meanwhile (a rebalance in
-- flight, or two consumers owning different topics' partitions of one
-- customer). Then nothing is written and the caller re-reads and decides
-- again, so no decision is ever made on stale state. Cost is constant per
-- operation; the script never scans the hash.
local key = KEYS[1]
-- Validate every op before the first write: Redis does not roll back what a
-- script wrote before an error. (Plain comparisons: a table of known ops
-- built on every call cost more than the check.)
if (#ARGV - 2) % 3 ~= 0 then
  return redis.error_reply('apply.lua: operations must come in triples')
end
local outbox_ops = false
for j = 3, #ARGV, 3 do
  local op = ARGV[j]
  if op == 'X' then
    outbox_ops = true
  elseif op ~= 'S' and op ~= 'I' and op ~= 'D' then
    return redis.error_reply('apply.lua: unknown op ' .. tostring(op))
  end
end
-- A key of another type would refuse a write half-way through; KEYS[1] is
-- checked by the version read below (or by the first write, for a contact
-- point's key, before anything is written), KEYS[2] only here.
if outbox_ops then
  local t = redis.call('TYPE', KEYS[2]).ok
  if t ~= 'hash' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE the outbox ' .. KEYS[2] .. ' is a ' .. t .. ', not a hash')
  end
end
if ARGV[2] ~= '-' then
  local cur = redis.call('HGET', key, 'v') or '0'
  if cur ~= ARGV[2] then
    return 0
  end
  redis.call('HINCRBY', key, 'v', 1)
end
local i = 3
while i + 2 <= #ARGV do
  local op, field, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'S' then
    redis.call('HSET', key, field, value)
  elseif op == 'I' then
    redis.call('HINCRBY', key, field, value)
  elseif op == 'D' then
    redis.call('HDEL', key, field)
  else -- 'X'
    redis.call('HSET', KEYS[2], field, value)
  end
  i = i + 3
end
-- A contact point on a do-not-contact list ("pn", mark.lua) is kept for
-- good; a customer's state says so itself (ARGV[1] "0").
if ARGV[1] == '0' or (ARGV[2] == '-' and redis.call('HEXISTS', key, 'pn') == 1) then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ARGV[1])
end
-- The outbox lives as long as the state (a year when that is kept for
-- good); PEXPIRE of a missing key does nothing, so no EXISTS first.
redis.call('PEXPIRE', KEYS[2], ARGV[1] == '0' and 31536000000 or ARGV[1])
return 1

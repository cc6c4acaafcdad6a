-- apply.lua: applies one batch of one customer's state changes atomically.
--
-- KEYS[1]  the customer's hash, "<prefix>:{<customer_id>}" (or a contact
--          point's, "<prefix>:{cp:<id>}")
-- KEYS[2]  its outbox hash, "<KEYS[1]>:x" (same slot); left out when the
--          caller knows it is empty and writes nothing to it
-- ARGV[1]  TTL of the hash in milliseconds (set again by this apply); "0"
--          keeps it forever (an opted-out customer must stay opted out);
--          "" leaves the expiry as it is: the caller set it recently
--          enough (store.c, apply_expiry; a customer's key without its
--          outbox only)
-- ARGV[2]  the version ("v" field) the caller read before deciding, "0" when
--          absent; "-" skips the check (contact-point keys)
-- ARGV[3]  the version this apply writes: ARGV[2] plus one, as the caller's
--          cache of the hash records it ("-" with a "-" ARGV[2]). Sent, not
--          worked out here: Lua's tonumber and tostring (strtod, then a
--          printf) cost a few tenths of a microsecond a call, about 5% of
--          the script's time (BENCHMARKS.md, bench/experiments/version-arg)
-- ARGV[4], ARGV[5], ARGV[6]
--          nd, ns, nx: the operations open with nd fields to delete (HDEL),
--          then ns field-value pairs to set (HSET), then nx field-value
--          pairs to set in the outbox (KEYS[2]), each run as plain
--          arguments (momentd's lists come in this order, md_ops_compact)
-- then     the rest as triples: op ("S" HSET, "I" HINCRBY, "D" HDEL on
--          KEYS[1]; "X" HSET on KEYS[2]), field, value
--
-- Returns 1 when applied, 0 when the version is no longer the one the caller
-- read: another consumer changed this customer meanwhile (a rebalance in
-- flight, or two consumers owning different topics' partitions of one
-- customer). Then nothing is written and the caller re-reads and decides
-- again, so no decision is ever made on stale state. Cost is constant per
-- operation; the script never scans the hash.
--
-- Why runs as plain arguments: a redis.call from Lua costs about as much as
-- a small command's own work, and so did building its argument list op by
-- op: unpacking the runs straight from ARGV took a fifth off the script's
-- time (BENCHMARKS.md).
local key = KEYS[1]
-- Validate every op before the first write: Redis does not roll back what a
-- script wrote before an error. (Plain comparisons: a table of known ops
-- built on every call cost more than the check.)
local nd, ns, nx = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if not nd or not ns or not nx or nd < 0 or ns < 0 or nx < 0 or nd % 1 ~= 0 or ns % 1 ~= 0 or nx % 1 ~= 0 then
  return redis.error_reply('apply.lua: ARGV[4..6] must count the leading deletes, sets and outbox sets')
end
if ARGV[1] == '' and (KEYS[2] or ARGV[2] == '-') then
  return redis.error_reply('apply.lua: an outbox or a contact point must have its TTL set (ARGV[1])')
end
if ARGV[2] ~= '-' and (ARGV[3] == nil or ARGV[3] == '' or ARGV[3] == '-') then
  return redis.error_reply('apply.lua: ARGV[3] must be the version this apply writes')
end
local tail = 7 + nd + 2 * ns + 2 * nx -- the first triple's op
if tail > #ARGV + 1 or (#ARGV + 1 - tail) % 3 ~= 0 then
  return redis.error_reply('apply.lua: operations must come in triples after the runs')
end
local outbox_ops = nx > 0
for j = tail, #ARGV, 3 do
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
if outbox_ops and not KEYS[2] then
  return redis.error_reply('apply.lua: outbox operations without the outbox key')
end
if outbox_ops then
  local t = redis.call('TYPE', KEYS[2]).ok
  if t ~= 'hash' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE the outbox ' .. KEYS[2] .. ' is a ' .. t .. ', not a hash')
  end
end
-- Consecutive operations of one kind go to Redis as one command (HSET of
-- every field and value, HDEL of every field): a redis.call from Lua costs
-- about as much as a small command's own work, and an apply writes 5-30
-- fields. momentd compacts each list first (md_ops_compact: a field's last
-- set or delete, the deletes, then the sets, then the outbox's), so a batch
-- with many events of one customer is three runs, not one per event.
-- Runs keep the operations' order, so a field set and then deleted in one
-- apply ends deleted. A command takes 512 arguments at most (Lua's unpack
-- has a C stack limit).
local version
if ARGV[2] ~= '-' then
  local cur = redis.call('HGET', key, 'v') or '0'
  if cur ~= ARGV[2] then
    return 0
  end
  version = ARGV[3]
end
-- The runs, in slices of at most 512 arguments (a command takes that many
-- at most here: Lua's unpack has a C stack limit). Written out, not as a
-- helper: a closure made on every call cost more than its loop.
local a = 7
local last = a + nd - 1
while a <= last do
  local b = math.min(a + 511, last)
  redis.call('HDEL', key, unpack(ARGV, a, b))
  a = b + 1
end
last = a + 2 * ns - 1
if version then
  local b = math.min(a + 509, last)
  if b >= a then
    redis.call('HSET', key, 'v', version, unpack(ARGV, a, b))
  else
    redis.call('HSET', key, 'v', version)
  end
  a = b + 1
end
while a <= last do
  local b = math.min(a + 511, last)
  redis.call('HSET', key, unpack(ARGV, a, b))
  a = b + 1
end
last = a + 2 * nx - 1
while a <= last do
  local b = math.min(a + 511, last)
  redis.call('HSET', KEYS[2], unpack(ARGV, a, b))
  a = b + 1
end
if tail <= #ARGV then
  local run_op, run, n = nil, {}, 0
  local function flush()
    if n > 0 then
      if run_op == 'S' then
        redis.call('HSET', key, unpack(run, 1, n))
      elseif run_op == 'D' then
        redis.call('HDEL', key, unpack(run, 1, n))
      else -- 'X'
        redis.call('HSET', KEYS[2], unpack(run, 1, n))
      end
      n = 0
    end
  end
  for i = tail, #ARGV - 2, 3 do
    local op = ARGV[i]
    if op == 'I' then
      flush()
      redis.call('HINCRBY', key, ARGV[i + 1], ARGV[i + 2])
    else
      if op ~= run_op or n >= 512 then
        flush()
        run_op = op
      end
      run[n + 1] = ARGV[i + 1]
      if op == 'D' then
        n = n + 1
      else
        run[n + 2] = ARGV[i + 2]
        n = n + 2
      end
    end
  end
  flush()
end
-- A contact point on a do-not-contact list ("pn", mark.lua) is kept for
-- good; a customer's state says so itself (ARGV[1] "0"). An expiry set
-- recently is left alone: a PEXPIRE per apply was a fifth of the calls.
if ARGV[1] == '' then
  -- as it is
elseif ARGV[1] == '0' or (ARGV[2] == '-' and redis.call('HEXISTS', key, 'pn') == 1) then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ARGV[1])
end
-- The outbox lives as long as the state (a year when that is kept for
-- good); PEXPIRE of a missing key does nothing, so no EXISTS first.
if KEYS[2] then
  redis.call('PEXPIRE', KEYS[2], ARGV[1] == '0' and 31536000000 or ARGV[1])
end
return 1

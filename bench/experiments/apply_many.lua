-- apply_many.lua: NOT USED BY MOMENTD. An experiment, kept so that its
-- measurement in BENCHMARKS.md (the sixteenth session) can be made again:
-- src/lua/apply.lua generalised to carry several customers a call. Built,
-- tested and measured against the script momentd uses (bench/experiments/
-- apply-calls), it saved nothing worth its complexity, and was not kept.
--
-- apply.lua: applies the state changes of one or more customers, each
-- atomically and only at the version its caller read.
--
-- ARGV[1]  m, how many customers this call carries (momentd sends up to 64
--          on one Redis server, one on a cluster, where a call's keys must
--          share a slot)
-- then, per customer, a header of seven arguments and its operations:
--   nkeys  1 or 2: the customer's keys, taken from KEYS in order: its hash,
--          "<prefix>:{<customer_id>}" (or a contact point's,
--          "<prefix>:{cp:<id>}"), then, with 2, its outbox hash "<hash>:x"
--          (same slot), left out when the caller knows it is empty and
--          writes nothing to it
--   ttl    TTL of the hash in milliseconds (set again by this apply); "0"
--          keeps it forever (an opted-out customer must stay opted out);
--          "" leaves the expiry as it is: the caller set it recently
--          enough (store.c, apply_expiry; a customer's key without its
--          outbox only)
--   version  the "v" field the caller read before deciding, "0" when
--          absent; "-" skips the check (contact-point keys)
--   nd, ns, nx, nt
--          the operations open with nd fields to delete (HDEL), then ns
--          field-value pairs to set (HSET), then nx field-value pairs to set
--          in the outbox, each run as plain arguments (momentd's lists come
--          in this order, md_ops_compact), then nt triples: op ("S" HSET,
--          "I" HINCRBY, "D" HDEL on the hash; "X" HSET on the outbox),
--          field, value
--
-- Returns an array of m results, one per customer in order: 1 when applied,
-- 0 when the version is no longer the one the caller read (another consumer
-- changed this customer meanwhile: a rebalance in flight, or two consumers
-- owning different topics' partitions of one customer), or an error when a
-- key of the customer is not a hash (or an "I" finds a field that holds no
-- integer: that apply stops there). With 0 or an error of its keys nothing
-- of that customer is written, and the others are applied all the same;
-- the caller re-reads and decides again, so no decision is ever made on
-- stale state.
-- A call that is not laid out as above is an error as a whole, and writes
-- nothing at all. Cost is constant per operation; the script never scans a
-- hash.
--
-- Why several customers a call: a script call costs Redis about a
-- microsecond of its own beyond the commands it runs, as much as the
-- version's HGET; one call for a slice of 64 customers took about a sixth
-- off Redis's time per customer (BENCHMARKS.md). Why runs as plain
-- arguments: a redis.call from Lua costs about as much as a small command's
-- own work, and so did building its argument list op by op: unpacking the
-- runs straight from ARGV took a fifth off the script's time.
local m, nargv = tonumber(ARGV[1]), #ARGV
if not m or m < 1 or m % 1 ~= 0 then
  return redis.error_reply('apply.lua: ARGV[1] must count the customers')
end
-- Every customer's layout is checked before the first write: Redis does not
-- roll back what a script wrote before an error. Lean on purpose: each
-- function call here costs about a tenth of a microsecond per customer,
-- and this loop ran a third of the script's time when it kept more.
local at = {}
local a, nkeys = 2, 0
for c = 1, m do
  local nd, ns, nx, nt = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local keys, ttl = ARGV[a], ARGV[a + 1]
  if not (nd and ns and nx and nt) or nd < 0 or ns < 0 or nx < 0 or nt < 0 or nd % 1 ~= 0 or ns % 1 ~= 0 or nx % 1 ~= 0 or
      nt % 1 ~= 0 or (keys ~= '1' and keys ~= '2') then
    return redis.error_reply('apply.lua: customer ' .. c .. ': its header must be nkeys (1 or 2), ttl, version and the counts of the leading deletes, sets, outbox sets and triples')
  end
  if ttl == '' then
    if keys == '2' or ARGV[a + 2] == '-' then
      return redis.error_reply('apply.lua: an outbox or a contact point must have its TTL set')
    end
  elseif ttl ~= '0' and not (tonumber(ttl) and tonumber(ttl) > 0 and tonumber(ttl) % 1 == 0) then
    return redis.error_reply('apply.lua: customer ' .. c .. ': its TTL must be a whole number of milliseconds')
  end
  local tail = a + 7 + nd + 2 * ns + 2 * nx -- the first triple's op
  local stop = tail + 3 * nt -- the next customer's header
  if stop > nargv + 1 then
    return redis.error_reply('apply.lua: customer ' .. c .. ': its operations run past the arguments')
  end
  local outbox_ops = nx > 0
  for j = tail, stop - 1, 3 do
    local op = ARGV[j]
    if op == 'X' then
      outbox_ops = true
    elseif op ~= 'S' and op ~= 'I' and op ~= 'D' then
      return redis.error_reply('apply.lua: unknown op ' .. tostring(op))
    end
  end
  if outbox_ops and keys ~= '2' then
    return redis.error_reply('apply.lua: outbox operations without the outbox key')
  end
  at[c] = a
  a = stop
  nkeys = nkeys + (keys == '2' and 2 or 1)
end
if a ~= nargv + 1 then
  return redis.error_reply('apply.lua: arguments beyond the last customer\'s operations')
end
if nkeys ~= #KEYS then
  return redis.error_reply('apply.lua: the headers name ' .. nkeys .. ' KEYS, the call has ' .. #KEYS)
end

local results = {}
local k = 1
for c = 1, m do
  a = at[c]
  local key, outbox = KEYS[k], nil
  if ARGV[a] == '2' then
    outbox = KEYS[k + 1]
    k = k + 2
  else
    k = k + 1
  end
  local ttl, expect = ARGV[a + 1], ARGV[a + 2]
  local nd, ns, nx, nt = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  a = a + 7
  local tail = a + nd + 2 * ns + 2 * nx
  local stop = tail + 3 * nt
  -- A key of another type would refuse a write half-way through: both are
  -- checked before this customer's first write (KEYS[1] by the version's
  -- HGET, a contact point's and the outbox by TYPE), and such a customer
  -- gets its error while the others go on.
  local refusal, version
  if expect ~= '-' then
    local cur = redis.pcall('HGET', key, 'v')
    if type(cur) == 'table' and cur.err then
      refusal = cur
    elseif (cur or '0') ~= expect then
      results[c] = 0
    else
      version = tostring(tonumber(cur or '0') + 1)
    end
  else
    local t = redis.call('TYPE', key).ok
    if t ~= 'hash' and t ~= 'none' then
      refusal = redis.error_reply('WRONGTYPE the contact point ' .. key .. ' is a ' .. t .. ', not a hash')
    end
  end
  if not refusal and not results[c] and outbox then
    local t = redis.call('TYPE', outbox).ok
    if t ~= 'hash' and t ~= 'none' then
      refusal = redis.error_reply('WRONGTYPE the outbox ' .. outbox .. ' is a ' .. t .. ', not a hash')
    end
  end
  if refusal then
    results[c] = refusal
  elseif not results[c] then
    -- Consecutive operations of one kind go to Redis as one command (HSET
    -- of every field and value, HDEL of every field): a redis.call from Lua
    -- costs about as much as a small command's own work, and an apply
    -- writes 5-30 fields. momentd compacts each list first (md_ops_compact:
    -- a field's last set or delete, the deletes, then the sets, then the
    -- outbox's), so a batch with many events of one customer is three runs,
    -- not one per event. Runs keep the operations' order, so a field set
    -- and then deleted in one apply ends deleted. A command takes 512
    -- arguments at most here (Lua's unpack has a C stack limit); the runs
    -- go in slices, written out rather than through a helper: a closure
    -- made on every call cost more than its loop.
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
      redis.call('HSET', outbox, unpack(ARGV, a, b))
      a = b + 1
    end
    local failed
    if nt > 0 then
      local run_op, run, n = nil, {}, 0
      local function flush()
        if n > 0 then
          if run_op == 'S' then
            redis.call('HSET', key, unpack(run, 1, n))
          elseif run_op == 'D' then
            redis.call('HDEL', key, unpack(run, 1, n))
          else -- 'X'
            redis.call('HSET', outbox, unpack(run, 1, n))
          end
          n = 0
        end
      end
      for i = tail, stop - 3, 3 do
        local op = ARGV[i]
        if op == 'I' then
          flush()
          -- The one write that can fail on a hash: a field that holds no
          -- integer. That customer's apply stops there with the error (what
          -- it wrote before stays: momentd writes no such field in a
          -- customer's hash), and the others of the call go on.
          local r = redis.pcall('HINCRBY', key, ARGV[i + 1], ARGV[i + 2])
          if type(r) == 'table' and r.err then
            failed = r
            break
          end
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
      if not failed then flush() end
    end
    if failed then
      results[c] = failed
    else
      -- A contact point on a do-not-contact list ("pn", mark.lua) is kept for
      -- good; a customer's state says so itself (ttl "0"). An expiry set
      -- recently is left alone: a PEXPIRE per apply was a fifth of the calls.
      if ttl == '' then
        -- as it is
      elseif ttl == '0' or (expect == '-' and redis.call('HEXISTS', key, 'pn') == 1) then
        redis.call('PERSIST', key)
      else
        redis.call('PEXPIRE', key, ttl)
      end
      -- The outbox lives as long as the state (a year when that is kept for
      -- good); PEXPIRE of a missing key does nothing, so no EXISTS first.
      if outbox then
        redis.call('PEXPIRE', outbox, ttl == '0' and 31536000000 or ttl)
      end
      results[c] = 1
    end
  end
end
return results

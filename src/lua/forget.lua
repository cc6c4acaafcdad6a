-- forget.lua: erases one customer (momentd forget) atomically.
--
-- KEYS[1]  the customer's hash, "<prefix>:{<customer_id>}"
-- KEYS[2]  its outbox hash, "<KEYS[1]>:x" (same slot)
-- ARGV[1]  when the customer is forgotten, epoch ms (the tombstone, field "fg")
-- ARGV[2]  how long the tombstone is kept, ms
--
-- Everything about the customer goes: state, windows, profile, contact log,
-- trigger and decision records, the outbox. What stays is the tombstone
-- (events up to that time are not counted again, so a replay cannot bring
-- the customer back), the version (bumped, so an apply decided on the old
-- state in flight fails and is decided again on the tombstone) and what
-- leaves the customer alone: the opt-out flag and the do-not-contact
-- entries ("dn:", momentd dnc), kept for good.
--
-- Returns {fields deleted, outbox entries deleted, 1 if the opt-out was kept,
-- the profile's contact point or ""} so the caller can erase the customer's
-- entries on the contact point's key (another slot) and report what it did.
local key, outbox = KEYS[1], KEYS[2]
local fields = redis.call('HLEN', key)
local pending = redis.call('HLEN', outbox)
local opted_out = redis.call('HGET', key, 'oo')
local contact_point = redis.call('HGET', key, 'p:contact_point') or ''
local version = tonumber(redis.call('HGET', key, 'v') or '0') or 0
-- Do-not-contact entries stay, like the opt-out: they are how the customer
-- is left alone, not data about them. Campaign lists go.
local keep = {}
for _, f in ipairs(redis.call('HKEYS', key)) do
  if string.sub(f, 1, 3) == 'dn:' then
    keep[#keep + 1] = f
    keep[#keep + 1] = redis.call('HGET', key, f)
  end
end
redis.call('DEL', key, outbox)
redis.call('HSET', key, 'fg', ARGV[1], 'v', version + 1)
if #keep > 0 then
  redis.call('HSET', key, unpack(keep))
  redis.call('HSET', key, 'pn', #keep / 2)
end
if opted_out or #keep > 0 then
  if opted_out then
    redis.call('HSET', key, 'oo', opted_out)
  end
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ARGV[2])
end
return {fields, pending, opted_out and 1 or 0, contact_point}

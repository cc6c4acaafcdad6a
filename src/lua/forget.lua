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
-- state in flight fails and is decided again on the tombstone) and, for an
-- opted-out customer, the opt-out flag: kept for good, like the opt-out.
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
redis.call('DEL', key, outbox)
redis.call('HSET', key, 'fg', ARGV[1], 'v', version + 1)
if opted_out then
  redis.call('HSET', key, 'oo', opted_out)
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ARGV[2])
end
return {fields, pending, opted_out and 1 or 0, contact_point}

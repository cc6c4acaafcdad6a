-- mark.lua: adds or removes one do-not-contact or campaign-list entry
-- (momentd dnc, momentd list) atomically.
--
-- KEYS[1]  a customer's hash "<prefix>:{<id>}" or a contact point's
--          "<prefix>:{cp:<id>}"
-- ARGV[1]  "add" or "remove"
-- ARGV[2]  the field: "dn:<channel>" ("dn:*": every channel), "ls:<campaign>"
-- ARGV[3]  the value to add ("dn:": when it was listed, kept if the entry is
--          there already; "ls:": "include" or "exclude"), or the value an
--          entry must have to be removed ("" for a "dn:" entry: any)
-- ARGV[4]  "1" for a customer's hash: the version is bumped, so that an
--          apply decided on the state before fails and decides again
-- ARGV[5]  TTL in ms given back to a hash nothing keeps any more
--
-- "pn" counts the entries; while it is there the hash never expires (the
-- daemon's applies keep it so: customers by their state, contact points by
-- apply.lua). A hash left with nothing but its version is deleted.
-- Returns 1 when something changed, 0 when it was so already.
local key, field, value = KEYS[1], ARGV[2], ARGV[3]
local t = redis.call('TYPE', key).ok
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. key .. ' is a ' .. t .. ', not a hash')
end
local dn = string.sub(field, 1, 3) == 'dn:'
local old = redis.call('HGET', key, field)
if ARGV[1] == 'add' then
  if old and (dn or old == value) then
    return 0
  end
  redis.call('HSET', key, field, value)
  if not old then
    redis.call('HINCRBY', key, 'pn', 1)
  end
else
  if not old or (not dn and old ~= value) then
    return 0
  end
  redis.call('HDEL', key, field)
  if redis.call('HINCRBY', key, 'pn', -1) <= 0 then
    redis.call('HDEL', key, 'pn')
  end
end
if ARGV[4] == '1' then
  redis.call('HINCRBY', key, 'v', 1)
end
if redis.call('HEXISTS', key, 'pn') == 1 then
  redis.call('PERSIST', key)
else
  local n = redis.call('HLEN', key)
  if n == 0 or (n == 1 and redis.call('HEXISTS', key, 'v') == 1) then
    redis.call('DEL', key)
  else
    redis.call('PEXPIRE', key, ARGV[5])
  end
end
return 1

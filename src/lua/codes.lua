-- codes.lua: the namespace's short codes (include/momentd/engine.h,
-- md_codes): a short code for each long code asked for, drawn once and
-- never given to another.
--
-- KEYS[1]  the namespace's "<prefix>:meta" hash
-- ARGV[1]  the long codes, joined by ',' ("t<topic code>", "s<series
--          code>", "a<attribute code>": md_codes_wanted)
--
-- Returns one string a long code, in their order: its short code, "" when
-- the namespace has none left to give (it then stays under its long one).
-- The field "code:<long code>" holds it; "codes" counts those given. A
-- short code is one letter A-Y for the first 25, then Z and two letters
-- (676 more): states read a short code by its first letter. Run by every
-- process that reads or writes customers, before its first read; atomic,
-- so two starting at once agree.
local meta = KEYS[1]
local t = redis.call('TYPE', meta).ok
if t ~= 'hash' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. meta .. ' is a ' .. t .. ', not momentd\'s hash')
end
local out = {}
for long in string.gmatch(ARGV[1], '[^,]+') do
  local field = 'code:' .. long
  local short = redis.call('HGET', meta, field)
  if not short then
    local n = redis.call('HINCRBY', meta, 'codes', 1)
    if n <= 25 then
      short = string.char(64 + n)
    elseif n <= 25 + 676 then
      local m = n - 26
      short = 'Z' .. string.char(65 + math.floor(m / 26)) .. string.char(65 + m % 26)
    else
      short = ''
    end
    redis.call('HSET', meta, field, short)
  end
  out[#out + 1] = short
end
return out

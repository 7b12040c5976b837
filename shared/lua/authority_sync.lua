-- KEYS: authority (one partition's)      ARGV: uid, level ('' = none), version
-- Copy a user's power to this partition, unless a newer version is already here.
-- Returns 1 when it changed something.
local current = redis.call('HGET', KEYS[1], ARGV[1])
local known = current and tonumber(string.match(current, ':(%d+)$')) or 0
if tonumber(ARGV[3]) > known then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
  return 1
end
return 0

-- Keys, arguments and reply declared in revocast.store.contracts (AUTHORITY_SYNC). level: '' = none.
-- Copy a user's power to this partition, unless a newer version is already here.
-- Returns 1 when it changed something.
local current = redis.call('HGET', AUTHORITY, uid)
local known = current and tonumber(string.match(current, ':(%d+)$')) or 0
if version > known then
  redis.call('HSET', AUTHORITY, uid, level .. ':' .. int(version))
  return 1
end
return 0

-- KEYS: epoch (one stream's)     ARGV: new_epoch, old_epoch ('' = none)
-- After a recovery, give this slot the deployment's new epoch, unless it already moved on.
-- Returns 1 when it set it.
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0

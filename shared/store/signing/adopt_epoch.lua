-- Keys, arguments and reply declared in revocast.store.contracts (ADOPT_EPOCH).
-- After a recovery, give this slot the deployment's new epoch, unless it already moved on.
-- Returns 1 when it set it.
local current = redis.call('GET', EPOCH)
if current == false or current == old_epoch then
  redis.call('SET', EPOCH, new_epoch)
  return 1
end
return 0

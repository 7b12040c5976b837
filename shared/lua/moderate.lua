-- ARGV: prefix, actor, action, target_uid, reason, lifetime_ms, retention_ms, roles_json
-- A moderator action on a user, authorized and audited in the same step.
--   block:   set the blocked flag and kill every session and token of the user
--   unblock: clear the flag (tokens killed by the block stay dead)
--   roles:   replace the roles; tokens minted with the old roles die, sessions survive
-- Errors: forbidden, not_found. Returns the revocation event id, or '' when none.
local actor, action, target, reason = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lifetime_ms, retention_ms, roles = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local user = P .. ':user:' .. target
if redis.call('EXISTS', user) == 0 then
  return redis.error_reply('not_found')
end
local level = require_authority(actor, target)
if type(level) == 'table' then return level end
local now = now_ms()
local event_id = ''
if action == 'block' then
  if target == actor then return redis.error_reply('forbidden') end
  redis.call('HSET', user, 'blocked', '1')
  event_id = revoke_user(target, now, lifetime_ms, retention_ms, 'blocked')
elseif action == 'unblock' then
  redis.call('HDEL', user, 'blocked')
elseif action == 'roles' then
  -- Granting or removing admin or moderator power is for admins and operators only.
  local old_ok, old = pcall(cjson.decode, redis.call('HGET', user, 'roles') or '[]')
  local touches_power = false
  for _, list in ipairs({old_ok and old or {}, cjson.decode(roles)}) do
    for _, role in ipairs(list) do
      if role == 'admin' or role == 'moderator' then touches_power = true end
    end
  end
  if touches_power and level == 'moderator' then return redis.error_reply('forbidden') end
  redis.call('HSET', user, 'roles', roles)
  local until_ms = now + lifetime_ms
  redis.call('HSET', P .. ':revoked:claims', target, int(now))
  redis.call('ZADD', P .. ':revoked:claims:until', int(until_ms), target)
  prune(now)
  event_id = emit(now, retention_ms, {
    'type', 'roles_changed', 'v', '1', 'ts_ms', int(now),
    'uid', target, 'not_before_ms', int(now), 'until_ms', int(until_ms)})
  reason = reason ~= '' and reason or roles
else
  return redis.error_reply('invalid_request')
end
audit(actor, action, target, reason, now)
return event_id

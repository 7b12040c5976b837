-- KEYS: fixed..., user (the target), user_sessions, session of each sid below...
-- ARGV: actor, action, target_uid, reason, lifetime_ms, retention_ms, roles_json, sid...
-- A moderator action on a user, authorized and audited in the same step.
--   block:   set the blocked flag and kill every session and token of the user
--   unblock: clear the flag (tokens killed by the block stay dead)
--   roles:   replace the roles; tokens minted with the old roles die, sessions survive
-- Returns {event id or '', old level, level, version}: the target's power, to copy to the
-- other partitions' AUTHORITY. Errors: forbidden, not_found, invalid_request, retry.
local USER, SESSIONS = KEYS[FIXED + 1], KEYS[FIXED + 2]
local actor, action, target, reason = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lifetime_ms, retention_ms, roles = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if redis.call('EXISTS', USER) == 0 then
  return redis.error_reply('not_found no such user: check the user id')
end
local level, refused = require_authority(actor, USER)
if refused then return refused end
local now = now_ms()
local old_level = level_of(USER)
local event_id = ''
if action == 'block' then
  if target == actor then
    return redis.error_reply('forbidden you cannot block yourself: ask another moderator')
  end
  local sessions = declared_sessions(SESSIONS, FIXED + 3, 8)
  if not sessions then return retry() end
  redis.call('HSET', USER, 'blocked', '1')
  event_id = revoke_user(target, SESSIONS, sessions, now, now, lifetime_ms, retention_ms,
    'blocked')
elseif action == 'unblock' then
  redis.call('HDEL', USER, 'blocked')
elseif action == 'roles' then
  -- Granting or withdrawing a service role (SERVICE_ROLES: power over other accounts or the
  -- service), or changing the roles of an account that holds one, is for admins and operators.
  local ok, new = pcall(cjson.decode, roles)
  if not ok or type(new) ~= 'table' then
    return redis.error_reply('invalid_request roles must be a JSON list of role names')
  end
  local touches_power = false
  for _, list in ipairs({decode_roles(USER), new}) do
    for _, role in ipairs(list) do
      if SERVICE_ROLES[role] then touches_power = true end
    end
  end
  if touches_power and level == 'moderator' then
    local names = {}
    for role in pairs(SERVICE_ROLES) do names[#names + 1] = role end
    table.sort(names)
    return redis.error_reply('forbidden only admins grant or withdraw the roles ' ..
      table.concat(names, ', ') .. ', or change the roles of an account holding one: ask an admin')
  end
  redis.call('HSET', USER, 'roles', roles)
  event_id = roles_changed(target, now, lifetime_ms, retention_ms)
  reason = reason ~= '' and reason or roles
else
  return redis.error_reply('invalid_request the action must be block, unblock or roles')
end
audit(actor, action, target, reason, now)
local power = authority_changed(target, USER, old_level)
return {event_id, power[1], power[2], power[3]}

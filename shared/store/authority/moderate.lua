-- Keys, arguments and reply declared in revocast.store.contracts (MODERATE).
-- USER: the target's; BUDGET: the actor's, limit (0: none); roles: JSON.
-- A moderator action on a user, authorized and audited in the same step.
--   block:   set the blocked flag and kill every session and token of the user
--   unblock: clear the flag (tokens killed by the block stay dead)
--   roles:   replace the roles; tokens minted with the old roles die (their sessions'
--            status list indexes turn INVALID), sessions survive
-- A block of a blocked user, or roles the user holds already, change nothing: no event, no
-- audit entry, only the heartbeat (``already``); the reply carries the event of the block or
-- of the last role change, as the call that made it did.
-- Returns {event id or '', old level, level, version}: the target's power, to copy to the
-- other partitions' AUTHORITY. A block or a role change spends from the actor's budget.
-- Errors: forbidden, not_found, invalid_request, too_many_revocations, retry.

local function same_roles(a, b)
  local held = {}
  for _, role in ipairs(a) do held[role] = true end
  for _, role in ipairs(b) do
    if not held[role] then return false end
    held[role] = nil
  end
  return next(held) == nil
end

-- Nothing to change: the reply names the event that made the state, and the power as it
-- stands goes out again (a first call stopped by not_durable had not copied it yet). The
-- level before is not known here: 'admin' stands for it, so that every copy this lowers is
-- written durably, as the first call's would have been.
local function unchanged(known, now, old_level)
  local version = tonumber(redis.call('HGET', USER, 'authority_v') or '0')
  return {already(known, now), 'admin', old_level, version}
end

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
  local known = redis.call('HGET', USER, 'blocked_event')
  if redis.call('HGET', USER, 'blocked') == '1' and known then
    return unchanged(known, now, old_level)
  end
  local over = over_budget(BUDGET, limit)
  if over then return over end
  local sessions = declared_sessions(SESSIONS, SESSION_KEYS, sids)
  if not sessions then return retry() end
  spend(BUDGET, limit)
  event_id = revoke_user(target, SESSIONS, sessions, now, now, REASON_BLOCKED,
    actor_kind)
  redis.call('HSET', USER, 'blocked', '1', 'blocked_event', event_id)
elseif action == 'unblock' then
  redis.call('HDEL', USER, 'blocked', 'blocked_event')
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
  if same_roles(decode_roles(USER), new) then
    return unchanged(redis.call('HGET', USER, 'roles_event') or '', now, old_level)
  end
  local over = over_budget(BUDGET, limit)
  if over then return over end
  local sessions = declared_sessions(SESSIONS, SESSION_KEYS, sids)
  if not sessions then return retry() end
  spend(BUDGET, limit)
  redis.call('HSET', USER, 'roles', roles)
  event_id = roles_changed(target, sessions, now, actor_kind)
  redis.call('HSET', USER, 'roles_event', event_id)
  reason = reason ~= '' and reason or roles
else
  return redis.error_reply('invalid_request the action must be block, unblock or roles')
end
audit(actor, action, target, reason, now)
local power = authority_changed(target, USER, old_level)
return {event_id, power[1], power[2], power[3]}

-- Prepended to every script that changes a partition, after the locals naming the
-- partition's fixed keys (EVENTS ... STATUS_LEASES: keyspace.PartitionKeys.fixed, declared
-- in revocast.store.contracts as FIXED_KEYS['partition']).

-- Forget revocations that outlived every token they cover, with the ids of their events:
-- each ZSET of forget-after times, then the hashes keyed by the same members.
local function prune(now)
  local sets = {{REVOKED_SESSIONS, SESSION_EVENTS}, {USERS_UNTIL, REVOKED_USERS, USER_EVENTS},
                {ROLES_UNTIL, REVOKED_ROLES}}
  for _, set in ipairs(sets) do
    local old = redis.call('ZRANGEBYSCORE', set[1], '-inf', '(' .. int(now), 'LIMIT', 0,
      PRUNE_BATCH)
    if #old > 0 then
      for i = 2, #set do redis.call('HDEL', set[i], unpack(old)) end
      redis.call('ZREM', set[1], unpack(old))
    end
  end
end

-- Idempotent revocation (DESIGN.md invariant 13): a call whose revocation is made already
-- writes no event and returns the id of the event that made it. It stamps the primary's time
-- on the heartbeat (as issuers do every 250 ms), so that the caller's WAIT has a write of
-- the present to wait for: replicas that have it have every earlier write, that event's too.
local function already(event_id, now)
  redis.call('SET', HEARTBEAT, int(now))
  return event_id
end

-- Each actor's budget of revocations that write an event (REVOCAST_REVOCATIONS_PER_MINUTE;
-- limit 0: none): a counter of this partition over a fixed minute, checked before a script
-- writes and spent once it has. A repeat that finds its revocation made spends nothing.

-- nil if the actor may write one more revocation, else the error to answer (with the ms
-- until the minute ends).
local function over_budget(counter, limit)
  if limit == 0 or tonumber(redis.call('GET', counter) or '0') < limit then return nil end
  local wait_ms = math.max(redis.call('PTTL', counter), 1)
  return redis.error_reply('too_many_revocations ' .. int(wait_ms))
end

local function spend(counter, limit)
  if limit == 0 then return end
  if redis.call('INCR', counter) == 1 or redis.call('PTTL', counter) < 0 then
    redis.call('PEXPIRE', counter, REVOCATION_WINDOW_MS)
  end
end

-- The event that revoked session sid, and the session's owner; nil if none is known.
local function session_revocation(sid)
  local known = redis.call('HGET', SESSION_EVENTS, sid)
  if not known then return nil end
  return string.match(known, '^(%S+) (%S+)$')
end

-- The event after which a token of session sid (of uid) issued at issued_ms (nil: unknown)
-- is dead: the session's revocation, or the user's cut-off at or after issued_ms.
local function revoked_by(sid, uid, issued_ms)
  local known = session_revocation(sid)
  if known then return known end
  if issued_ms == nil then return nil end
  local cut_off = tonumber(redis.call('HGET', REVOKED_USERS, uid) or '-1')
  if cut_off < issued_ms then return nil end
  return redis.call('HGET', USER_EVENTS, uid) or nil
end

-- Sessions the caller read from the user's set come as keys and ids (a script's SESSION_KEYS
-- and sids), count of each. The script may only touch declared keys, so it goes on only if
-- the set still holds exactly those ids; else the caller reads it again.
local function declared_sessions(set_key, keys, sids)
  local sessions = {}
  local count = #keys
  if #sids ~= count then return nil end
  local expected = {}
  for i = 1, count do
    sessions[i] = {sid = sids[i], key = keys[i]}
    expected[sids[i]] = true
  end
  local members = redis.call('SMEMBERS', set_key)
  if #members ~= count then return nil end
  for _, sid in ipairs(members) do
    if not expected[sid] then return nil end
  end
  return sessions
end

local function retry()
  return redis.error_reply('retry')
end

-- Delete a session and record its revocation with its event, as one step. ``actor_kind`` is
-- who it comes from (ACTOR_USER...: revocast.events.ActorKind), told in the event.
local function revoke_session(session_key, set_key, sid, uid, now, reason, actor_kind)
  status_invalidate(session_key, now)
  redis.call('DEL', session_key)
  redis.call('SREM', set_key, sid)
  local until_ms = now + LIFETIME_MS
  redis.call('ZADD', REVOKED_SESSIONS, 'GT', int(until_ms), sid)
  prune(now)
  local event_id = emit(EVENTS, CHAIN, now, SESSION_REVOKED, {
    'sid', sid, 'uid', uid, 'at_ms', int(now), 'until_ms', int(until_ms), 'reason', reason,
    'actor_kind', actor_kind})
  redis.call('HSET', SESSION_EVENTS, sid, event_id .. ' ' .. uid)
  return event_id
end

-- Kill every token of a user issued at or before not_before (now unless given), and every
-- session created by then. ``sessions`` comes from declared_sessions.
local function revoke_user(uid, set_key, sessions, now, not_before, reason, actor_kind)
  for _, session in ipairs(sessions) do
    local created = tonumber(redis.call('HGET', session.key, 'created_ms') or '0')
    if created <= not_before then
      status_invalidate(session.key, now)
      redis.call('DEL', session.key)
      redis.call('SREM', set_key, session.sid)
    end
  end
  local until_ms = now + LIFETIME_MS
  local known = tonumber(redis.call('HGET', REVOKED_USERS, uid) or '0')
  redis.call('HSET', REVOKED_USERS, uid, int(math.max(known, not_before)))
  redis.call('ZADD', USERS_UNTIL, 'GT', int(until_ms), uid)
  prune(now)
  local event_id = emit(EVENTS, CHAIN, now, USER_REVOKED, {
    'uid', uid, 'not_before_ms', int(not_before), 'until_ms', int(until_ms), 'reason', reason,
    'actor_kind', actor_kind})
  if not_before >= known then redis.call('HSET', USER_EVENTS, uid, event_id) end
  return event_id
end

-- Tokens of uid issued up to now carry stale roles: they must be refreshed. ``sessions``
-- (from declared_sessions) live on, but the indexes their tokens hold turn INVALID: the next
-- refresh draws a new one.
local function roles_changed(uid, sessions, now, actor_kind)
  for _, session in ipairs(sessions) do status_invalidate(session.key, now) end
  local until_ms = now + LIFETIME_MS
  redis.call('HSET', REVOKED_ROLES, uid, int(now))
  redis.call('ZADD', ROLES_UNTIL, 'GT', int(until_ms), uid)
  prune(now)
  return emit(EVENTS, CHAIN, now, ROLES_CHANGED, {
    'uid', uid, 'not_before_ms', int(now), 'until_ms', int(until_ms), 'actor_kind', actor_kind})
end

local function decode_roles(user_key)
  local ok, roles = pcall(cjson.decode, redis.call('HGET', user_key, 'roles') or '[]')
  if ok and type(roles) == 'table' then return roles end
  return {}
end

local function has_role(user_key, wanted)
  for _, role in ipairs(decode_roles(user_key)) do
    if role == wanted then return true end
  end
  return false
end

-- A user's power over others, from its record: 'admin', 'moderator' or '' (none, or blocked).
local function level_of(user_key)
  if redis.call('HGET', user_key, 'blocked') == '1' then return '' end
  if has_role(user_key, 'admin') then return 'admin' end
  if has_role(user_key, 'moderator') then return 'moderator' end
  return ''
end

-- AUTHORITY holds uid -> 'level:version' for every admin and moderator (and those who were),
-- in every partition, so that a script can check an actor from another partition atomically.
-- A newer version always wins; the user's own partition is updated with the record.
local function set_authority(uid, level, version)
  local current = redis.call('HGET', AUTHORITY, uid)
  local known = current and tonumber(string.match(current, ':(%d+)$')) or 0
  if version > known then
    redis.call('HSET', AUTHORITY, uid, level .. ':' .. int(version))
  end
end

-- Record a change of the user's power (after roles or the blocked flag changed) here;
-- returns {old level, new level, version} for the caller to copy to the other partitions.
local function authority_changed(uid, user_key, old_level)
  local level = level_of(user_key)
  if level == '' and old_level == '' then return {old_level, level, 0} end
  local version = redis.call('HINCRBY', user_key, 'authority_v', 1)
  set_authority(uid, level, version)
  return {old_level, level, version}
end

-- Operators (actors named OPERATOR_PREFIX..., the CLI's) act directly; others need a level
-- in AUTHORITY (revocast.store.authority states the same rule for Python's reads).
local function authority(actor)
  if string.sub(actor, 1, #OPERATOR_PREFIX) == OPERATOR_PREFIX then return 'operator' end
  local entry = redis.call('HGET', AUTHORITY, actor)
  if not entry then return nil end
  local level = string.match(entry, '^(%a*):')
  if level == nil or level == '' then return nil end
  return level
end

-- Refuse unless the actor may act on the target: moderators may not act on admins.
local function require_authority(actor, target_user_key)
  local level = authority(actor)
  if not level then
    return nil, redis.error_reply('forbidden only admins and moderators may do this: ask one')
  end
  if level == 'moderator' and has_role(target_user_key, 'admin') then
    return nil, redis.error_reply('forbidden moderators cannot act on admins: ask an admin')
  end
  return level, nil
end

local function audit(actor, action, target, reason, now)
  audit_entry(AUDIT, actor, action, target, reason, now)
end

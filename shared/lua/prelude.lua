-- Helpers prepended to every revocast script. Times are Redis server ms.
local P = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(x)
  return string.format('%d', x)
end

-- Append an event, trimming (exactly) entries older than the retention window.
local function emit(now, retention_ms, fields)
  return redis.call('XADD', P .. ':events', 'MINID', int(now - retention_ms), '*', unpack(fields))
end

local function prune(now)
  redis.call('ZREMRANGEBYSCORE', P .. ':revoked:sessions', '-inf', '(' .. int(now))
  for _, kind in ipairs({'users', 'claims'}) do
    local index = P .. ':revoked:' .. kind .. ':until'
    local old = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. int(now), 'LIMIT', 0, 1000)
    if #old > 0 then
      redis.call('HDEL', P .. ':revoked:' .. kind, unpack(old))
      redis.call('ZREM', index, unpack(old))
    end
  end
end

-- Delete a session and record its revocation with its event, as one step.
local function revoke_session(sid, uid, now, lifetime_ms, retention_ms, reason)
  redis.call('DEL', P .. ':session:' .. sid)
  redis.call('SREM', P .. ':user:' .. uid .. ':sessions', sid)
  local until_ms = now + lifetime_ms
  redis.call('ZADD', P .. ':revoked:sessions', int(until_ms), sid)
  prune(now)
  return emit(now, retention_ms, {
    'type', 'session_revoked', 'v', '1', 'ts_ms', int(now),
    'sid', sid, 'uid', uid, 'at_ms', int(now), 'until_ms', int(until_ms), 'reason', reason})
end

-- Kill every session of a user and every token issued to it until now.
local function revoke_user(uid, now, lifetime_ms, retention_ms, reason)
  local set = P .. ':user:' .. uid .. ':sessions'
  local sids = redis.call('SMEMBERS', set)
  for _, sid in ipairs(sids) do
    redis.call('DEL', P .. ':session:' .. sid)
  end
  redis.call('DEL', set)
  local until_ms = now + lifetime_ms
  redis.call('HSET', P .. ':revoked:users', uid, int(now))
  redis.call('ZADD', P .. ':revoked:users:until', int(until_ms), uid)
  prune(now)
  return emit(now, retention_ms, {
    'type', 'user_revoked', 'v', '1', 'ts_ms', int(now),
    'uid', uid, 'not_before_ms', int(now), 'until_ms', int(until_ms), 'reason', reason})
end

-- Roles and blocked flag are read inside the script, so a moderator blocked or
-- demoted a moment ago has no power. Operators ('cli:' actors) act directly.
-- Returns 'operator', 'admin', 'moderator' or nil.
local function authority(actor)
  if string.sub(actor, 1, 4) == 'cli:' then return 'operator' end
  local user = P .. ':user:' .. actor
  if redis.call('HGET', user, 'blocked') == '1' then return nil end
  local ok, roles = pcall(cjson.decode, redis.call('HGET', user, 'roles') or '[]')
  if not ok then return nil end
  local found = nil
  for _, role in ipairs(roles) do
    if role == 'admin' then return 'admin' end
    if role == 'moderator' then found = 'moderator' end
  end
  return found
end

local function has_role(uid, wanted)
  local ok, roles = pcall(cjson.decode, redis.call('HGET', P .. ':user:' .. uid, 'roles') or '[]')
  if not ok then return false end
  for _, role in ipairs(roles) do
    if role == wanted then return true end
  end
  return false
end

-- Refuse unless the actor may act on target_uid: moderators may not act on admins.
local function require_authority(actor, target_uid)
  local level = authority(actor)
  if not level then return redis.error_reply('forbidden') end
  if level == 'moderator' and target_uid and has_role(target_uid, 'admin') then
    return redis.error_reply('forbidden')
  end
  return level
end

local function audit(actor, action, target, reason, now)
  redis.call('XADD', P .. ':audit', 'MAXLEN', '~', '1000000', '*', 'ts_ms', int(now),
    'actor', actor, 'action', action, 'target', target, 'reason', reason)
end

-- Sessions of a user, oldest first, dropping set members whose session expired.
local function live_sessions(uid)
  local set = P .. ':user:' .. uid .. ':sessions'
  local live = {}
  for _, sid in ipairs(redis.call('SMEMBERS', set)) do
    local created = redis.call('HGET', P .. ':session:' .. sid, 'created_ms')
    if created then
      live[#live + 1] = {tonumber(created), sid}
    else
      redis.call('SREM', set, sid)
    end
  end
  table.sort(live, function(a, b) return a[1] < b[1] end)
  return live
end

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
  local old = redis.call('ZRANGEBYSCORE', P .. ':revoked:users:until', '-inf', '(' .. int(now), 'LIMIT', 0, 1000)
  if #old > 0 then
    redis.call('HDEL', P .. ':revoked:users', unpack(old))
    redis.call('ZREM', P .. ':revoked:users:until', unpack(old))
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

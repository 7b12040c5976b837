-- Keys, arguments and reply declared in revocast.store.contracts (LOGIN).
-- FAILURES, PAIR, KNOWN: the login attempt's (login_attempt.lua); scope: JSON list of roles
-- asked for, '' for all of them; address: its hash ('' for a session made without a
-- password attempt: nothing to forgive); known_ms: 0 remembers no address; sids: the
-- user's sessions as the caller read them, only needed with max_sessions.
-- Create a session and its first refresh token; past max_sessions (0 = no limit) the oldest
-- sessions are revoked with their events. The login forgives its attempt: the address's
-- failures for the user are forgotten, the user's count loses this attempt, the address is
-- known. The session draws its status list index (status_list.lua). Returns {now_ms,
-- roles_json, sessions revoked, status list index}.
-- Errors: invalid_credentials, user_blocked, invalid_scope (a role the user does not hold),
-- retry (the session set changed meanwhile).
local roles = redis.call('HGET', USER, 'roles')
if not roles then
  return redis.error_reply('invalid_credentials')
end
if redis.call('HGET', USER, 'blocked') == '1' then
  return redis.error_reply('user_blocked')
end
if scope ~= '' then
  local held = {}
  for _, role in ipairs(cjson.decode(roles)) do held[role] = true end
  for _, role in ipairs(cjson.decode(scope)) do
    if not held[role] then return redis.error_reply('invalid_scope') end
  end
end
local now = now_ms()
local revoked = 0
if max_sessions > 0 then
  local sessions = declared_sessions(SESSIONS, SESSION_KEYS, sids)
  if not sessions then return retry() end
  local live = {}
  for _, session in ipairs(sessions) do
    local created = redis.call('HGET', session.key, 'created_ms')
    if created then
      live[#live + 1] = {tonumber(created), session}
    else
      redis.call('SREM', SESSIONS, session.sid)  -- expired
    end
  end
  table.sort(live, function(a, b) return a[1] < b[1] end)
  for i = 1, #live - max_sessions + 1 do
    local session = live[i][2]
    revoke_session(session.key, SESSIONS, session.sid, uid, now, lifetime_ms, retention_ms,
      REASON_SESSION_LIMIT, ACTOR_POLICY)
    revoked = revoked + 1
  end
end
if address ~= '' then
  redis.call('DEL', PAIR)
  if tonumber(redis.call('HGET', FAILURES, 'n') or '0') > 0 then
    redis.call('HINCRBY', FAILURES, 'n', -1)
  end
  if known_ms > 0 then
    redis.call('ZADD', KNOWN, int(now), address)
    redis.call('ZREMRANGEBYSCORE', KNOWN, '-inf', '(' .. int(now - known_ms))
    redis.call('ZREMRANGEBYRANK', KNOWN, 0, -known_max - 1)
    redis.call('PEXPIRE', KNOWN, known_ms)
  end
end
redis.call('HSET', SESSION, 'uid', uid, 'created_ms', int(now), 'refreshed_ms', int(now),
  'user_agent', user_agent, 'client', client, 'client_id', client_id)
if scope ~= '' then redis.call('HSET', SESSION, 'scope', scope) end
redis.call('EXPIRE', SESSION, refresh_ttl_s)
local status_idx = status_index(SESSION, now, now + refresh_ttl_s * SECOND_MS + lifetime_ms)
redis.call('SADD', SESSIONS, sid)
redis.call('HSET', RT, 'sid', sid, 'uid', uid, 'state', 'live', 'client_id', client_id,
  'issued_ms', int(now))
redis.call('EXPIRE', RT, refresh_ttl_s)
return {int(now), roles, revoked, status_idx}

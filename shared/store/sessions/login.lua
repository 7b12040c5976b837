-- Keys, arguments and reply declared in revocast.store.contracts (LOGIN).
-- FAILURES, PAIR, KNOWN: the login attempt's (login_attempt.lua); scope: JSON list of roles
-- asked for, '' for all of them; address: its hash ('' for a session made without a
-- password attempt: nothing to forgive); LOGIN_KNOWN_MS: 0 remembers no address; sids: the
-- user's sessions as the caller read them, only needed with MAX_SESSIONS.
-- Create a session and its first refresh token; past MAX_SESSIONS (0 = no limit) the oldest
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
if MAX_SESSIONS > 0 then
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
  for i = 1, #live - MAX_SESSIONS + 1 do
    local session = live[i][2]
    revoke_session(session.key, SESSIONS, session.sid, uid, now, REASON_SESSION_LIMIT,
      ACTOR_POLICY)
    revoked = revoked + 1
  end
end
if address ~= '' then
  redis.call('DEL', PAIR)
  if tonumber(redis.call('HGET', FAILURES, 'n') or '0') > 0 then
    redis.call('HINCRBY', FAILURES, 'n', -1)
  end
  if LOGIN_KNOWN_MS > 0 then
    redis.call('ZADD', KNOWN, int(now), address)
    redis.call('ZREMRANGEBYSCORE', KNOWN, '-inf', '(' .. int(now - LOGIN_KNOWN_MS))
    redis.call('ZREMRANGEBYRANK', KNOWN, 0, -KNOWN_ADDRESSES_MAX - 1)
    redis.call('PEXPIRE', KNOWN, LOGIN_KNOWN_MS)
  end
end
redis.call('HSET', SESSION, 'uid', uid, 'created_ms', int(now), 'refreshed_ms', int(now),
  'user_agent', user_agent, 'client', client, 'client_id', client_id)
if scope ~= '' then redis.call('HSET', SESSION, 'scope', scope) end
redis.call('EXPIRE', SESSION, REFRESH_TTL_S)
local status_idx = status_index(SESSION, now, now + REFRESH_TTL_S * SECOND_MS + LIFETIME_MS)
redis.call('SADD', SESSIONS, sid)
redis.call('HSET', RT, 'sid', sid, 'uid', uid, 'state', 'live', 'client_id', client_id,
  'issued_ms', int(now))
redis.call('EXPIRE', RT, REFRESH_TTL_S)
return {int(now), roles, revoked, status_idx}

-- KEYS: fixed..., refresh_token, user, user_sessions, session, next_refresh_token
-- ARGV: sid, uid (as the caller read them from refresh_token), sealed_next, grace_ms,
--       refresh_ttl_s, lifetime_ms, retention_ms, client_id (as the caller read it)
-- Claim a refresh token atomically. Returns {status, now_ms, roles_json, sealed_next, scope,
-- status list index} (scope: the JSON list of roles granted at login, '' for all of them;
-- the index the new access token names: the session's, drawn anew after a role change):
--   rotated: first use, next_refresh_token is now the live token
--   grace:   reused within the grace window, sealed_next is the successor already issued
--   reused:  reused after the grace window: someone holds a copy, the session was revoked
-- Errors: invalid_grant (unknown, expired or revoked), user_blocked, retry.
local RT, USER, SESSIONS, SESSION, NEXT_RT = KEYS[FIXED + 1], KEYS[FIXED + 2], KEYS[FIXED + 3],
  KEYS[FIXED + 4], KEYS[FIXED + 5]
local sid, uid, sealed, grace_ms = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local ttl, lifetime_ms, retention_ms = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local client_id = ARGV[8]
local rec = redis.call('HMGET', RT, 'sid', 'uid', 'state', 'used_ms', 'sealed_next', 'client_id')
if not rec[1] then
  return redis.error_reply('invalid_grant')
end
if rec[1] ~= sid or rec[2] ~= uid or (rec[6] or 'revocast') ~= client_id then
  return retry()  -- 'revocast': tokens from before clients were recorded (DEFAULT_CLIENT_ID)
end
if redis.call('HGET', USER, 'blocked') == '1' then
  return redis.error_reply('user_blocked')
end
if redis.call('EXISTS', SESSION) == 0 then
  return redis.error_reply('invalid_grant')
end
local roles = redis.call('HGET', USER, 'roles') or '[]'
local scope = redis.call('HGET', SESSION, 'scope') or ''
local now = now_ms()
local lease = now + ttl * SECOND_MS + lifetime_ms  -- the session's last token has expired by then
if rec[3] == 'live' then
  redis.call('HSET', RT, 'state', 'used', 'used_ms', int(now), 'sealed_next', sealed)
  redis.call('HSET', NEXT_RT, 'sid', sid, 'uid', uid, 'state', 'live', 'client_id', client_id,
    'issued_ms', int(now))
  redis.call('EXPIRE', NEXT_RT, ttl)
  redis.call('HSET', SESSION, 'refreshed_ms', int(now))
  redis.call('EXPIRE', SESSION, ttl)
  return {'rotated', int(now), roles, sealed, scope, status_index(SESSION, now, lease)}
end
if now - tonumber(rec[4]) <= grace_ms then
  return {'grace', int(now), roles, rec[5], scope, status_index(SESSION, now, lease)}
end
revoke_session(SESSION, SESSIONS, sid, uid, now, lifetime_ms, retention_ms, 'refresh_reuse')
return {'reused', int(now), roles, '', scope, -1}

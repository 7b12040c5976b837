-- Keys, arguments and reply declared in revocast.store.contracts (REFRESH).
-- sid, uid, client_id: as the caller read them from RT; sealed: the next token, sealed.
-- Claim a refresh token atomically. Returns {status, now_ms, roles_json, sealed_next, scope,
-- status list index} (scope: the JSON list of roles granted at login, '' for all of them;
-- the index the new access token names: the session's, drawn anew after a role change):
--   rotated: first use, next_refresh_token is now the live token
--   grace:   reused within the grace window, sealed_next is the successor already issued
--   reused:  reused after the grace window: someone holds a copy, the session was revoked
-- Errors: invalid_grant (unknown, expired or revoked), user_blocked, retry.
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
local lease = now + REFRESH_TTL_S * SECOND_MS + LIFETIME_MS  -- the session's last token has expired by then
if rec[3] == 'live' then
  redis.call('HSET', RT, 'state', 'used', 'used_ms', int(now), 'sealed_next', sealed)
  redis.call('HSET', NEXT_RT, 'sid', sid, 'uid', uid, 'state', 'live', 'client_id', client_id,
    'issued_ms', int(now))
  redis.call('EXPIRE', NEXT_RT, REFRESH_TTL_S)
  redis.call('HSET', SESSION, 'refreshed_ms', int(now))
  redis.call('EXPIRE', SESSION, REFRESH_TTL_S)
  return {'rotated', int(now), roles, sealed, scope, status_index(SESSION, now, lease)}
end
if now - tonumber(rec[4]) <= GRACE_MS then
  return {'grace', int(now), roles, rec[5], scope, status_index(SESSION, now, lease)}
end
revoke_session(SESSION, SESSIONS, sid, uid, now, REASON_REFRESH_REUSE, ACTOR_POLICY)
return {'reused', int(now), roles, '', scope, -1}

-- ARGV: prefix, rt_hash, next_rt_hash, sealed_next, grace_ms, refresh_ttl_s, lifetime_ms, retention_ms
-- Claim a refresh token atomically.
-- Returns {status, sid, uid, now_ms, roles_json, sealed_next, signing_kid|''}:
--   rotated: first use, next_rt_hash is now the live token
--   grace:   reused within the grace window, sealed_next is the successor already issued
-- Errors: invalid_grant (unknown, expired, revoked or reused: reuse revokes the session),
--         user_blocked.
local rt_key = P .. ':rt:' .. ARGV[2]
local next_hash, sealed, grace_ms = ARGV[3], ARGV[4], tonumber(ARGV[5])
local ttl, lifetime_ms, retention_ms = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local rec = redis.call('HMGET', rt_key, 'sid', 'uid', 'state', 'used_ms', 'sealed_next')
local sid, uid, state = rec[1], rec[2], rec[3]
if not sid then
  return redis.error_reply('invalid_grant')
end
local user = P .. ':user:' .. uid
if redis.call('HGET', user, 'blocked') == '1' then
  return redis.error_reply('user_blocked')
end
local session = P .. ':session:' .. sid
if redis.call('EXISTS', session) == 0 then
  return redis.error_reply('invalid_grant')
end
local roles = redis.call('HGET', user, 'roles') or '[]'
local signing_kid = redis.call('GET', P .. ':signing_kid') or ''
local now = now_ms()
if state == 'live' then
  redis.call('HSET', rt_key, 'state', 'used', 'used_ms', int(now), 'sealed_next', sealed)
  local next_key = P .. ':rt:' .. next_hash
  redis.call('HSET', next_key, 'sid', sid, 'uid', uid, 'state', 'live')
  redis.call('EXPIRE', next_key, ttl)
  redis.call('HSET', session, 'refreshed_ms', int(now))
  redis.call('EXPIRE', session, ttl)
  return {'rotated', sid, uid, int(now), roles, sealed, signing_kid}
end
if now - tonumber(rec[4]) <= grace_ms then
  return {'grace', sid, uid, int(now), roles, rec[5], signing_kid}
end
-- Reuse after the grace window: someone holds a copy. Kill the session.
revoke_session(sid, uid, now, lifetime_ms, retention_ms, 'refresh_reuse')
return redis.error_reply('invalid_grant')

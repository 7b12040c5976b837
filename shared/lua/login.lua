-- ARGV: prefix, uid, sid, rt_hash, refresh_ttl_s, user_agent, client, max_sessions,
--       lifetime_ms, retention_ms
-- Create a session and its first refresh token; past max_sessions (0 = no limit) the
-- oldest session is revoked with its event. Returns {now_ms, roles_json, signing_kid|''}.
local uid, sid, rt, ttl = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local max_sessions, lifetime_ms, retention_ms = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local user = P .. ':user:' .. uid
local roles = redis.call('HGET', user, 'roles')
if not roles then
  return redis.error_reply('invalid_credentials')
end
if redis.call('HGET', user, 'blocked') == '1' then
  return redis.error_reply('user_blocked')
end
local now = now_ms()
if max_sessions > 0 then
  local live = live_sessions(uid)
  for i = 1, #live - max_sessions + 1 do
    revoke_session(live[i][2], uid, now, lifetime_ms, retention_ms, 'session_limit')
  end
end
local session = P .. ':session:' .. sid
redis.call('HSET', session, 'uid', uid, 'created_ms', int(now), 'refreshed_ms', int(now),
  'user_agent', ARGV[6], 'client', ARGV[7])
redis.call('EXPIRE', session, ttl)
redis.call('SADD', P .. ':user:' .. uid .. ':sessions', sid)
redis.call('HSET', P .. ':rt:' .. rt, 'sid', sid, 'uid', uid, 'state', 'live')
redis.call('EXPIRE', P .. ':rt:' .. rt, ttl)
return {int(now), roles, redis.call('GET', P .. ':signing_kid') or ''}

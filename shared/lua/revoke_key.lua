-- ARGV: prefix, kid, retention_ms, actor, reason
-- Withdraw a key for good: every token it signed dies, issuers stop signing with it.
-- Errors: not_found. Returns the event id.
local kid, retention_ms, actor, reason = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
if redis.call('HEXISTS', P .. ':jwks', kid) == 0 then
  return redis.error_reply('not_found')
end
local now = now_ms()
redis.call('ZADD', P .. ':revoked:keys', 'NX', int(now), kid)
if redis.call('GET', P .. ':signing_kid') == kid then
  redis.call('DEL', P .. ':signing_kid')
end
audit(actor, 'revoke_key', kid, reason, now)
return emit(now, retention_ms, {'type', 'key_revoked', 'v', '1', 'ts_ms', int(now), 'kid', kid,
  'at_ms', int(now)})

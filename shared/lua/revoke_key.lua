-- KEYS: global keys...   ARGV: kid, retention_ms, actor, reason
-- Withdraw a key for good: every token it signed dies, issuers stop signing with it.
-- Repeating it re-records the revocation. Errors: not_found. Returns the event id.
local kid, retention_ms, actor, reason = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if redis.call('HEXISTS', JWKS, kid) == 0 and not redis.call('ZSCORE', REVOKED_KEYS, kid) then
  return redis.error_reply('not_found no such signing key: `revocast keys list` shows them')
end
local now = now_ms()
redis.call('HDEL', SEALED_KEYS, kid)
audit(actor, 'revoke_key', kid, reason, now)
return key_revoked(now, retention_ms, kid)

-- Keys, arguments and reply declared in revocast.store.contracts (REVOKE_KEY).
-- Withdraw a key for good: every token it signed dies, issuers stop signing with it. A key
-- revoked already is not revoked again: nothing is written but the heartbeat (a write of the
-- present for the caller's WAIT), and the event that revoked it is returned.
-- Errors: not_found. Returns the event id.
if redis.call('HEXISTS', JWKS, kid) == 0 and not redis.call('ZSCORE', REVOKED_KEYS, kid) then
  return redis.error_reply('not_found no such signing key: `revocast keys list` shows them')
end
local now = now_ms()
local known = redis.call('HGET', REVOKED_KEY_EVENTS, kid)
if known and redis.call('ZSCORE', REVOKED_KEYS, kid) then
  redis.call('SET', HEARTBEAT, int(now))
  return known
end
redis.call('HDEL', SEALED_KEYS, kid)
audit(actor, 'revoke_key', kid, reason, now)
return key_revoked(now, kid, actor_kind)

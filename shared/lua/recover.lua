-- ARGV: prefix, new_epoch, new_kid, new_jwk, retention_ms, old_kid...
-- Redis lost the deployment's state (no epoch). Fail safe, once for all issuers: revoke every
-- key that may have signed tokens nobody can account for, activate a new key, set a new epoch.
-- Returns 1 when this call recovered, 0 when another issuer already had.
if redis.call('EXISTS', P .. ':epoch') == 1 then return 0 end
local new_kid, jwk, retention_ms = ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = now_ms()
redis.call('SET', P .. ':epoch', ARGV[2])
for i = 6, #ARGV do
  redis.call('ZADD', P .. ':revoked:keys', 'NX', int(now), ARGV[i])
  emit(now, retention_ms, {'type', 'key_revoked', 'v', '1', 'ts_ms', int(now), 'kid', ARGV[i],
    'at_ms', int(now)})
end
redis.call('HSET', P .. ':jwks', new_kid, jwk)
emit(now, retention_ms, {'type', 'key_published', 'v', '1', 'ts_ms', int(now), 'kid', new_kid,
  'jwk', jwk})
redis.call('SET', P .. ':signing_kid', new_kid)
audit('system', 'state_lost', new_kid, 'redis lost its data; every older key revoked', now)
return 1

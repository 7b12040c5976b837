-- ARGV: prefix, kid, jwk_json, epoch, retention_ms
-- Publish a public key (once) and make sure the deployment has an epoch.
local kid, jwk, epoch, retention_ms = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
redis.call('SET', P .. ':epoch', epoch, 'NX')
if redis.call('ZSCORE', P .. ':revoked:keys', kid) then
  return redis.error_reply('key_revoked')
end
if redis.call('HSETNX', P .. ':jwks', kid, jwk) == 1 then
  local now = now_ms()
  emit(now, retention_ms, {'type', 'key_published', 'v', '1', 'ts_ms', int(now), 'kid', kid, 'jwk', jwk})
  return 1
end
return 0

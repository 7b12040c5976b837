-- ARGV: prefix, kid, jwk_json, epoch|'', retention_ms, activate(0|1), actor
-- Publish a public key (once, with its event); with an epoch, make sure the deployment has one.
-- With activate, or when no key is active yet, it becomes the key issuers sign with.
-- Errors: key_revoked. Returns the active kid.
local kid, jwk, epoch, retention_ms = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local activate, actor = ARGV[6] == '1', ARGV[7]
if epoch ~= '' then redis.call('SET', P .. ':epoch', epoch, 'NX') end
if redis.call('ZSCORE', P .. ':revoked:keys', kid) then
  return redis.error_reply('key_revoked')
end
local now = now_ms()
if redis.call('HSETNX', P .. ':jwks', kid, jwk) == 1 then
  emit(now, retention_ms, {'type', 'key_published', 'v', '1', 'ts_ms', int(now), 'kid', kid, 'jwk', jwk})
end
local active = redis.call('GET', P .. ':signing_kid')
if activate or not active then
  redis.call('SET', P .. ':signing_kid', kid)
  if actor ~= '' then audit(actor, 'activate_key', kid, '', now) end
  return kid
end
return active

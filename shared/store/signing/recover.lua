-- Keys, arguments and reply declared in revocast.store.contracts (RECOVER).
-- old_epoch, sealed: '' = none; kids: keys the caller holds.
-- Redis lost state the deployment answered for (an epoch vanished somewhere). Fail safe, once
-- for all issuers: revoke every key that may have signed tokens nobody can account for (all
-- published ones and those given), activate a new key, set a new epoch. The partitions then
-- adopt the epoch. Returns 1 when this call recovered, 0 when another issuer already had.
local current = redis.call('GET', EPOCH)
if current and current ~= old_epoch then return 0 end
local now = now_ms()
redis.call('SET', EPOCH, new_epoch)
local old = redis.call('HKEYS', JWKS)
for _, kid in ipairs(kids) do old[#old + 1] = kid end
for _, kid in ipairs(old) do
  if kid ~= new_kid and not redis.call('ZSCORE', REVOKED_KEYS, kid) then
    key_revoked(now, kid, ACTOR_SYSTEM)
    redis.call('HDEL', SEALED_KEYS, kid)
  end
end
redis.call('HSET', JWKS, new_kid, jwk)
if sealed ~= '' then redis.call('HSET', SEALED_KEYS, new_kid, sealed) end
key_published(now, new_kid, jwk)
redis.call('SET', SIGNING_KID, new_kid)
audit('system', 'state_lost', new_kid, 'redis lost state; every older key revoked', now)
return 1

-- Keys, arguments and reply declared in revocast.store.contracts (PUBLISH_KEY).
-- epoch, sealed (the private key, sealed): '' = none.
-- Publish a public key (once, with its event), and its sealed private key if given; with an
-- epoch, make sure the deployment has one. With activate, or when no key is active yet, it
-- becomes the key issuers sign with. Errors: key_revoked. Returns the active kid.
if epoch ~= '' then redis.call('SET', EPOCH, epoch, 'NX') end
if redis.call('ZSCORE', REVOKED_KEYS, kid) then
  return redis.error_reply('key_revoked this key was revoked: '
    .. '`revocast keys rotate` makes a new one')
end
local now = now_ms()
if sealed ~= '' then redis.call('HSETNX', SEALED_KEYS, kid, sealed) end
if redis.call('HSETNX', JWKS, kid, jwk) == 1 then
  key_published(now, kid, jwk)
  if actor ~= '' then audit(actor, 'publish_key', kid, '', now) end
end
local active = redis.call('GET', SIGNING_KID)
if activate or not active then
  redis.call('SET', SIGNING_KID, kid)
  if actor ~= '' and active ~= kid then audit(actor, 'activate_key', kid, '', now) end
  return kid
end
return active

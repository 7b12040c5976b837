-- Act on an upstream IdP's token (logout token, SET) at most once, by its jti.
-- Keys, arguments and reply declared in revocast.store.contracts (UPSTREAM_TOKEN).
-- TOKEN: the token's replay key (keyspace upstream_token); action: claim, done or release;
-- owner: a random id of the request acting on the token; ttl_s: how long the claim (claim)
-- or the memory (done) lasts.
--   claim:   'claimed' (the key was free: this request acts, the key is its own for ttl_s),
--            'busy' (another request is acting on it now) or 'done' (acted on before)
--   done:    remember it as acted on, for ttl_s: 'done'
--   release: free it if this owner still holds it (acting failed, so a retry may act):
--            'released', else 'kept'
local claim = 'claimed:' .. owner
local held = redis.call('GET', TOKEN)
if action == 'claim' then
  if not held then
    redis.call('SET', TOKEN, claim, 'EX', ttl_s)
    return 'claimed'
  end
  -- Older issuers wrote '1' once they had acted: that is done too.
  if string.sub(held, 1, 8) == 'claimed:' then return 'busy' end
  return 'done'
end
if action == 'done' then
  redis.call('SET', TOKEN, 'done', 'EX', ttl_s)
  return 'done'
end
if held == claim then
  redis.call('DEL', TOKEN)
  return 'released'
end
return 'kept'

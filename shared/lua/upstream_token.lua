-- Act on an upstream IdP's token (logout token, SET) at most once, by its jti.
-- KEYS[1]: the token's replay key (keyspace upstream_token)
-- ARGV[1]: action: claim, done or release
-- ARGV[2]: owner, a random id of the request acting on the token
-- ARGV[3]: ttl_s, how long the claim (claim) or the memory (done) lasts
--   claim:   'claimed' (the key was free: this request acts, the key is its own for ttl_s),
--            'busy' (another request is acting on it now) or 'done' (acted on before)
--   done:    remember it as acted on, for ttl_s: 'done'
--   release: free it if this owner still holds it (acting failed, so a retry may act):
--            'released', else 'kept'
local key, action, owner, ttl = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local claim = 'claimed:' .. owner
local held = redis.call('GET', key)
if action == 'claim' then
  if not held then
    redis.call('SET', key, claim, 'EX', ttl)
    return 'claimed'
  end
  -- Older issuers wrote '1' once they had acted: that is done too.
  if string.sub(held, 1, 8) == 'claimed:' then return 'busy' end
  return 'done'
end
if action == 'done' then
  redis.call('SET', key, 'done', 'EX', ttl)
  return 'done'
end
if held == claim then
  redis.call('DEL', key)
  return 'released'
end
return 'kept'

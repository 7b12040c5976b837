-- Link the IdP's user to a local user at login (once the password was checked), spending the
-- login's upstream nonce in the same step. A link never moves to another user.
-- KEYS[1]: the nonce's spent mark (keyspace upstream_nonce)
-- KEYS[2]: the IdP user's link (upstream_user)
-- KEYS[3]: the link records (upstream_links)
-- KEYS[4]: the global audit stream
-- KEYS[5]: optional, the local sessions of the IdP's session (upstream_session)
-- ARGV[1]: uid, ARGV[2]: link id (the digest in KEYS[2]), ARGV[3]: the IdP's iss,
-- ARGV[4]: its sub, ARGV[5]: nonce_ttl_s (what is left of the nonce's life),
-- ARGV[6]: "uid sid" (the session to link, with KEYS[5]), ARGV[7]: session_ttl_s
-- Returns 'linked' (a new link), 'kept' (already this user's), 'spent' (the nonce was used
-- before: nothing changed) or 'taken' (another user's: only the nonce is spent).
local uid, link_id, iss, sub = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5]) then return 'spent' end
local linked = redis.call('GET', KEYS[2])
if linked and linked ~= uid then return 'taken' end
if KEYS[5] then
  redis.call('SADD', KEYS[5], ARGV[6])
  redis.call('EXPIRE', KEYS[5], ARGV[7])
end
if linked then return 'kept' end
local now = now_ms()
redis.call('SET', KEYS[2], uid)
redis.call('HSET', KEYS[3], link_id,
  cjson.encode({user_id = uid, iss = iss, sub = sub, linked_ms = int(now)}))
audit_entry(KEYS[4], uid, 'upstream_link', uid .. '/' .. link_id, '', now)
return 'linked'

-- Link the IdP's user to a local user at login (once the password was checked), spending the
-- login's upstream nonce in the same step. A link never moves to another user.
-- Keys, arguments and reply declared in revocast.store.contracts (UPSTREAM_LINK).
-- NONCE: the nonce's spent mark (keyspace upstream_nonce); LINK: the IdP user's link
-- (upstream_user); LINKS: the link records (upstream_links); AUDIT: the global audit stream;
-- UPSTREAM_SESSIONS (optional): the local sessions of the IdP's session (upstream_session).
-- link_id: the digest in LINK; nonce_ttl_s: what is left of the nonce's life; member:
-- "uid sid", the session to link into UPSTREAM_SESSIONS.
-- Returns 'linked' (a new link), 'kept' (already this user's), 'spent' (the nonce was used
-- before: nothing changed) or 'taken' (another user's: only the nonce is spent).
if not redis.call('SET', NONCE, '1', 'NX', 'EX', nonce_ttl_s) then return 'spent' end
local linked = redis.call('GET', LINK)
if linked and linked ~= uid then return 'taken' end
if UPSTREAM_SESSIONS then
  redis.call('SADD', UPSTREAM_SESSIONS, member)
  redis.call('EXPIRE', UPSTREAM_SESSIONS, session_ttl_s)
end
if linked then return 'kept' end
local now = now_ms()
redis.call('SET', LINK, uid)
redis.call('HSET', LINKS, link_id,
  cjson.encode({user_id = uid, iss = iss, sub = sub, linked_ms = int(now)}))
audit_entry(AUDIT, uid, 'upstream_link', uid .. '/' .. link_id, '', now)
return 'linked'

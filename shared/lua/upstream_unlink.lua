-- An operator removes a link between an IdP's user and a local user, audited. Nothing is
-- revoked: the user's sessions live on, and the IdP's logouts of that sub end nothing here.
-- KEYS[1]: the IdP user's link (keyspace upstream_user)
-- KEYS[2]: the link records (upstream_links)
-- KEYS[3]: the global audit stream
-- ARGV[1]: uid, ARGV[2]: link id (the digest in KEYS[1]), ARGV[3]: actor, ARGV[4]: reason
-- Returns 'unlinked', or 'not_found' (no such link to this user: nothing changed).
local uid, link_id = ARGV[1], ARGV[2]
if redis.call('GET', KEYS[1]) ~= uid then return 'not_found' end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], link_id)
audit_entry(KEYS[3], ARGV[3], 'upstream_unlink', uid .. '/' .. link_id, ARGV[4], now_ms())
return 'unlinked'

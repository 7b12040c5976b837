-- An operator removes a link between an IdP's user and a local user, audited. Nothing is
-- revoked: the user's sessions live on, and the IdP's logouts of that sub end nothing here.
-- Keys, arguments and reply declared in revocast.store.contracts (UPSTREAM_UNLINK).
-- LINK: the IdP user's link (keyspace upstream_user); LINKS: the link records
-- (upstream_links); AUDIT: the global audit stream; link_id: the digest in LINK.
-- Returns 'unlinked', or 'not_found' (no such link to this user: nothing changed).
if redis.call('GET', LINK) ~= uid then return 'not_found' end
redis.call('DEL', LINK)
redis.call('HDEL', LINKS, link_id)
audit_entry(AUDIT, actor, 'upstream_unlink', uid .. '/' .. link_id, reason, now_ms())
return 'unlinked'

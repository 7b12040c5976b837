-- Prepended to every script that changes the global slot: signing keys and the epoch, after
-- the locals naming its fixed keys (EVENTS ... HEARTBEAT: keyspace.GlobalKeys, declared in
-- revocast.store.contracts as FIXED_KEYS['global']; writes.Writes passes them).

local function audit(actor, action, target, reason, now)
  audit_entry(AUDIT, actor, action, target, reason, now)
end

local function key_published(now, kid, jwk)
  return emit(EVENTS, CHAIN, now, KEY_PUBLISHED, {'kid', kid, 'jwk', jwk})
end

local function key_revoked(now, kid, actor_kind)
  redis.call('ZADD', REVOKED_KEYS, 'NX', int(now), kid)
  if redis.call('GET', SIGNING_KID) == kid then redis.call('DEL', SIGNING_KID) end
  local event_id = emit(EVENTS, CHAIN, now, KEY_REVOKED,
    {'kid', kid, 'at_ms', int(now), 'actor_kind', actor_kind})
  redis.call('HSET', REVOKED_KEY_EVENTS, kid, event_id)
  return event_id
end

-- Prepended to every script that changes the global slot: signing keys and the epoch.
-- KEYS[1..10] are keyspace.GlobalKeys in this order (writes.Writes names them).
local EVENTS, CHAIN, EPOCH, JWKS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local REVOKED_KEYS, SIGNING_KID, AUDIT, SEALED_KEYS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local REVOKED_KEY_EVENTS, HEARTBEAT = KEYS[9], KEYS[10]

local function audit(actor, action, target, reason, now)
  audit_entry(AUDIT, actor, action, target, reason, now)
end

local function key_published(now, retention_ms, kid, jwk)
  return emit(EVENTS, CHAIN, now, retention_ms, 'key_published', {'kid', kid, 'jwk', jwk})
end

local function key_revoked(now, retention_ms, kid)
  redis.call('ZADD', REVOKED_KEYS, 'NX', int(now), kid)
  if redis.call('GET', SIGNING_KID) == kid then redis.call('DEL', SIGNING_KID) end
  local event_id = emit(EVENTS, CHAIN, now, retention_ms, 'key_revoked',
    {'kid', kid, 'at_ms', int(now)})
  redis.call('HSET', REVOKED_KEY_EVENTS, kid, event_id)
  return event_id
end

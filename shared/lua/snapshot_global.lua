#!lua flags=no-writes
-- KEYS: events, chain, epoch, heartbeat, revoked_keys, jwks (the global slot's)
-- Every published and revoked key and the stream position they correspond to, in one step.
-- Runs on replicas. Returns {epoch|false, heartbeat|false, now_ms, last_id, link|false,
-- revoked keys (flat kid, at), jwks (flat kid, jwk)}
return {redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4]), int(now_ms()), last_id(KEYS[1]),
  redis.call('GET', KEYS[2]), redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', KEYS[6])}

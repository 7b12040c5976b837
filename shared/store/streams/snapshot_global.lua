#!lua flags=no-writes
-- Keys, arguments and reply declared in revocast.store.contracts (SNAPSHOT_GLOBAL).
-- Every published and revoked key and the stream position they correspond to, in one step.
-- Runs on replicas. Returns {epoch|false, heartbeat|false, now_ms, last_id, link|false,
-- revoked keys (flat kid, at), jwks (flat kid, jwk)}
return {redis.call('GET', EPOCH), redis.call('GET', HEARTBEAT), int(now_ms()), last_id(EVENTS),
  redis.call('GET', CHAIN), redis.call('ZRANGE', REVOKED_KEYS, 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', JWKS)}

#!lua flags=no-writes
-- KEYS: events, epoch, heartbeat, revoked_keys, jwks (the global slot's)
-- Every published and revoked key and the stream position they correspond to, in one step.
-- Runs on replicas. Returns {epoch|false, heartbeat|false, now_ms, entries_added, last_id,
-- revoked keys (flat kid, at), jwks (flat kid, jwk)}
local position = stream_position(KEYS[1])
return {redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), int(now_ms()), position[2],
  position[5], redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES'), redis.call('HGETALL', KEYS[5])}

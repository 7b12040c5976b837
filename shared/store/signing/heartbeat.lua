-- Keys, arguments and reply declared in revocast.store.contracts (HEARTBEAT).
-- Stamp the primary's time, so that verifiers reading a replica can tell how far behind it
-- is. Returns {epoch|false, now_ms}.
local now = now_ms()
redis.call('SET', HEARTBEAT, int(now))
return {redis.call('GET', EPOCH), int(now)}

-- KEYS: heartbeat, epoch (one stream's)
-- Stamp the primary's time, so that verifiers reading a replica can tell how far behind it
-- is. Returns {epoch|false, now_ms}.
local now = now_ms()
redis.call('SET', KEYS[1], int(now))
return {redis.call('GET', KEYS[2]), int(now)}

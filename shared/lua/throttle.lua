-- KEYS: counter (a client address's login attempts)      ARGV: limit, window_s
-- Count one more attempt (the first starts the window); refuse past the limit.
-- Returns the milliseconds to wait (0: go ahead).
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], window) end
if count > limit then return math.max(redis.call('PTTL', KEYS[1]), 1) end
return 0

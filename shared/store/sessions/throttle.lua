-- Keys, arguments and reply declared in revocast.store.contracts (THROTTLE).
-- COUNTER: a client address's login attempts.
-- Count one more attempt (the first starts the window); refuse past LOGIN_CLIENT_LIMIT.
-- Returns the milliseconds to wait (0: go ahead).
local count = redis.call('INCR', COUNTER)
if count == 1 then redis.call('EXPIRE', COUNTER, LOGIN_WINDOW_S) end
if count > LOGIN_CLIENT_LIMIT then return math.max(redis.call('PTTL', COUNTER), 1) end
return 0

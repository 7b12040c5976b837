-- Keys, arguments and reply declared in revocast.store.contracts (UNLOCK_LOGIN).
-- FAILURES: the username's HASH.
-- An operator forgives every login attempt counted for a username, audited: its count and
-- delay go, and the per-address counts made before now stop counting (login_attempt.lua
-- reads reset_ms; LOGIN_MEMORY_S outlasts the window, so it outlives them).
-- Returns {attempts it had counted, ms a new address would have waited}.
local now = now_ms()
local counted = tonumber(redis.call('HGET', FAILURES, 'n') or '0')
local wait = math.max(tonumber(redis.call('HGET', FAILURES, 'next_ms') or '0') - now, 0)
redis.call('DEL', FAILURES)
redis.call('HSET', FAILURES, 'reset_ms', int(now))
redis.call('EXPIRE', FAILURES, LOGIN_MEMORY_S)
audit(actor, 'unlock', uid, reason, now)
return {counted, int(wait)}

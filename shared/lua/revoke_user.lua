-- KEYS: fixed..., user_sessions, session of each sid below...
-- ARGV: uid, lifetime_ms, retention_ms, reason, not_before_ms ('' = now), sid...
-- Kill every session and token of the user up to not_before. Repeating it with the same
-- not_before changes nothing that a later login made. Returns the event id.
-- Errors: retry (the session set changed since the caller read it).
local SESSIONS = KEYS[FIXED + 1]
local uid, lifetime_ms, retention_ms, reason = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local sessions = declared_sessions(SESSIONS, FIXED + 2, 6)
if not sessions then return retry() end
local now = now_ms()
local not_before = ARGV[5] == '' and now or math.min(now, tonumber(ARGV[5]))
return revoke_user(uid, SESSIONS, sessions, now, not_before, lifetime_ms, retention_ms, reason)

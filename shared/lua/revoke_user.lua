-- KEYS: fixed..., user_sessions, budget (the actor's), session of each sid below...
-- ARGV: uid, lifetime_ms, retention_ms, reason, covers_ms ('' = none), budget limit (0: none),
--       sid...
-- Kill every session and token of the user issued up to now. With covers_ms (the issue time
-- of the caller's token), a cut-off at or after it means this was done already (a repeated
-- logout-all, whose token the first call killed): nothing is written but the heartbeat, and
-- that cut-off's event id is returned, so sessions made since stay. Returns the event id.
-- Errors: too_many_revocations, retry (the session set changed since the caller read it).
local SESSIONS, BUDGET = KEYS[FIXED + 1], KEYS[FIXED + 2]
local uid, lifetime_ms, retention_ms, reason = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local covers, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
if covers then
  local cut_off = tonumber(redis.call('HGET', REVOKED_USERS, uid) or '-1')
  local known = redis.call('HGET', USER_EVENTS, uid)
  if cut_off >= covers and known then return already(known, now) end
end
local refused = over_budget(BUDGET, limit)
if refused then return refused end
local sessions = declared_sessions(SESSIONS, FIXED + 3, 7)
if not sessions then return retry() end
spend(BUDGET, limit)
return revoke_user(uid, SESSIONS, sessions, now, now, lifetime_ms, retention_ms, reason)

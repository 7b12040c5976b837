-- KEYS: fixed..., session, user_sessions, budget (the actor's)
-- ARGV: sid, uid, lifetime_ms, retention_ms, reason, issued_ms (of the caller's token; '' if
--       unknown), budget limit (0: none)
-- Revoke one session. If it is gone and revoked already (by its own revocation, or by a cut-off
-- of its user at or after issued_ms), nothing is written but the heartbeat (``already``), and
-- the id of that revocation's event is returned. Returns the event's stream id.
-- Errors: too_many_revocations.
local SESSION, SESSIONS, BUDGET = KEYS[FIXED + 1], KEYS[FIXED + 2], KEYS[FIXED + 3]
local sid, uid, lifetime_ms, retention_ms, reason = ARGV[1], ARGV[2], tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5]
local limit = tonumber(ARGV[7])
local now = now_ms()
if redis.call('EXISTS', SESSION) == 0 then
  local known = revoked_by(sid, uid, tonumber(ARGV[6]))
  if known then return already(known, now) end
end
local refused = over_budget(BUDGET, limit)
if refused then return refused end
spend(BUDGET, limit)
return revoke_session(SESSION, SESSIONS, sid, uid, now, lifetime_ms, retention_ms, reason)

-- Keys, arguments and reply declared in revocast.store.contracts (REVOKE_USER).
-- BUDGET: the actor's, limit (0: none); covers_ms: nil = none.
-- Kill every session and token of the user issued up to now. With covers_ms (the issue time
-- of the caller's token), a cut-off at or after it means this was done already (a repeated
-- logout-all, whose token the first call killed): nothing is written but the heartbeat, and
-- that cut-off's event id is returned, so sessions made since stay. Returns the event id.
-- Errors: too_many_revocations, retry (the session set changed since the caller read it).
local now = now_ms()
if covers_ms then
  local cut_off = tonumber(redis.call('HGET', REVOKED_USERS, uid) or '-1')
  local known = redis.call('HGET', USER_EVENTS, uid)
  if cut_off >= covers_ms and known then return already(known, now) end
end
local refused = over_budget(BUDGET, limit)
if refused then return refused end
local sessions = declared_sessions(SESSIONS, SESSION_KEYS, sids)
if not sessions then return retry() end
spend(BUDGET, limit)
return revoke_user(uid, SESSIONS, sessions, now, now, reason, actor_kind)

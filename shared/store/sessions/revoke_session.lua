-- Keys, arguments and reply declared in revocast.store.contracts (REVOKE_SESSION).
-- BUDGET: the actor's, limit (0: none); issued_ms: of the caller's token (nil: unknown).
-- Revoke one session. If it is gone and revoked already (by its own revocation, or by a cut-off
-- of its user at or after issued_ms), nothing is written but the heartbeat (``already``), and
-- the id of that revocation's event is returned. Returns the event's stream id.
-- Errors: too_many_revocations.
local now = now_ms()
if redis.call('EXISTS', SESSION) == 0 then
  local known = revoked_by(sid, uid, issued_ms)
  if known then return already(known, now) end
end
local refused = over_budget(BUDGET, limit)
if refused then return refused end
spend(BUDGET, limit)
return revoke_session(SESSION, SESSIONS, sid, uid, now, reason, actor_kind)

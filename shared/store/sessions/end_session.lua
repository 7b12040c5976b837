-- Keys, arguments and reply declared in revocast.store.contracts (END_SESSION).
-- expected: the owner's uid as the caller read it; owner, actor: '' = none; limit 0: none.
-- End one session. With owner, only the owner's own session (else not_found); with actor, a
-- moderator's action (authorized and audited). A session ended already (by this call
-- repeated, or by any other revocation of it) is not ended again: nothing is written but
-- the heartbeat, and its revocation's event id is returned. Returns the event id.
-- Errors: not_found, forbidden, too_many_revocations, retry.
local known = nil
local uid = redis.call('HGET', SESSION, 'uid')
if not uid then known, uid = session_revocation(sid) end
if not uid or (owner ~= '' and uid ~= owner) then
  return redis.error_reply('not_found no such session: it has ended, or the id is wrong')
end
if uid ~= expected then return retry() end
local now = now_ms()
if actor ~= '' then
  local _, refused = require_authority(actor, USER)
  if refused then return refused end
end
if known then return already(known, now) end
local over = over_budget(BUDGET, limit)
if over then return over end
spend(BUDGET, limit)
if actor ~= '' then audit(actor, 'end_session', uid .. '/' .. sid, reason, now) end
return revoke_session(SESSION, SESSIONS, sid, uid, now, reason, actor_kind)

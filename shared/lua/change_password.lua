-- KEYS: fixed..., user, user_sessions, session of each sid below...
-- ARGV: uid, new_hash, keep_sid, lifetime_ms, retention_ms, actor, sid...
-- Store the new hash and end every other session of the user, audited (the actor is the
-- user, or the operator who reset it). Returns {how many ended, the last event id ('' if
-- none)}.
-- Errors: not_found, retry.
local USER, SESSIONS = KEYS[FIXED + 1], KEYS[FIXED + 2]
local uid, new_hash, keep = ARGV[1], ARGV[2], ARGV[3]
local lifetime_ms, retention_ms, actor = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if redis.call('EXISTS', USER) == 0 then
  return redis.error_reply('not_found no such user: it was removed')
end
local sessions = declared_sessions(SESSIONS, FIXED + 3, 7)
if not sessions then return retry() end
redis.call('HSET', USER, 'password_hash', new_hash)
local now = now_ms()
local ended, last = 0, ''
for _, session in ipairs(sessions) do
  if session.sid ~= keep then
    if redis.call('EXISTS', session.key) == 1 then
      last = revoke_session(session.key, SESSIONS, session.sid, uid, now, lifetime_ms,
        retention_ms, 'password_changed')
      ended = ended + 1
    else
      redis.call('SREM', SESSIONS, session.sid)  -- expired
    end
  end
end
audit(actor, 'password', uid, keep ~= '' and 'changed' or 'reset', now)
return {ended, last}

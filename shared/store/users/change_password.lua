-- Keys, arguments and reply declared in revocast.store.contracts (CHANGE_PASSWORD).
-- new_hash: '' = a repeat; BUDGET: the actor's, limit (0: none).
-- Store the new hash and end every other session of the user, audited (the actor is the
-- user, or the operator who reset it). The outcome is kept on the user's record
-- ('password_change': keep_sid, how many ended, the last event id) for a repeat: with no
-- new_hash, the change keep_sid made last is answered again, and nothing is written but the
-- heartbeat ({-1, ''} if keep_sid did not make the last change).
-- Returns {how many ended, the last event id ('' if none)}. A change that ends sessions
-- spends one from the actor's budget, and is refused whole past it.
-- Errors: not_found, too_many_revocations, retry.
if redis.call('EXISTS', USER) == 0 then
  return redis.error_reply('not_found no such user: it was removed')
end
local now = now_ms()
if new_hash == '' then
  local made = redis.call('HGET', USER, 'password_change') or ''
  local by, ended, last = string.match(made, '^(%S*) (%d+) (%S*)$')
  if keep_sid == '' or by ~= keep_sid then return {-1, ''} end
  return {tonumber(ended), already(last, now)}
end
local sessions = declared_sessions(SESSIONS, SESSION_KEYS, sids)
if not sessions then return retry() end
local ending, expired = {}, {}
for _, session in ipairs(sessions) do
  if session.sid ~= keep_sid then
    local live = redis.call('EXISTS', session.key) == 1
    local list = live and ending or expired
    list[#list + 1] = session
  end
end
if #ending > 0 then
  local over = over_budget(BUDGET, limit)
  if over then return over end
  spend(BUDGET, limit)
end
for _, session in ipairs(expired) do redis.call('SREM', SESSIONS, session.sid) end
redis.call('HSET', USER, 'password_hash', new_hash)
local ended, last = #ending, ''
for _, session in ipairs(ending) do
  last = revoke_session(session.key, SESSIONS, session.sid, uid, now, REASON_PASSWORD_CHANGED,
    actor_kind)
end
redis.call('HSET', USER, 'password_change', keep_sid .. ' ' .. int(ended) .. ' ' .. last)
audit(actor, 'password', uid, keep_sid ~= '' and 'changed' or 'reset', now)
return {ended, last}

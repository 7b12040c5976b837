-- KEYS: fixed..., user, user_sessions, budget (the actor's), session of each sid below...
-- ARGV: uid, new_hash ('' = repeat), keep_sid, lifetime_ms, retention_ms, actor, budget
--       limit (0: none), sid...
-- Store the new hash and end every other session of the user, audited (the actor is the
-- user, or the operator who reset it). The outcome is kept on the user's record
-- ('password_change': keep_sid, how many ended, the last event id) for a repeat: with no
-- new_hash, the change keep_sid made last is answered again, and nothing is written but the
-- heartbeat ({-1, ''} if keep_sid did not make the last change).
-- Returns {how many ended, the last event id ('' if none)}. A change that ends sessions
-- spends one from the actor's budget, and is refused whole past it.
-- Errors: not_found, too_many_revocations, retry.
local USER, SESSIONS, BUDGET = KEYS[FIXED + 1], KEYS[FIXED + 2], KEYS[FIXED + 3]
local uid, new_hash, keep = ARGV[1], ARGV[2], ARGV[3]
local lifetime_ms, retention_ms, actor = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local limit = tonumber(ARGV[7])
if redis.call('EXISTS', USER) == 0 then
  return redis.error_reply('not_found no such user: it was removed')
end
local now = now_ms()
if new_hash == '' then
  local made = redis.call('HGET', USER, 'password_change') or ''
  local by, ended, last = string.match(made, '^(%S*) (%d+) (%S*)$')
  if keep == '' or by ~= keep then return {-1, ''} end
  return {tonumber(ended), already(last, now)}
end
local sessions = declared_sessions(SESSIONS, FIXED + 4, 8)
if not sessions then return retry() end
local ending, expired = {}, {}
for _, session in ipairs(sessions) do
  if session.sid ~= keep then
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
  last = revoke_session(session.key, SESSIONS, session.sid, uid, now, lifetime_ms, retention_ms,
    'password_changed')
end
redis.call('HSET', USER, 'password_change', keep .. ' ' .. int(ended) .. ' ' .. last)
audit(actor, 'password', uid, keep ~= '' and 'changed' or 'reset', now)
return {ended, last}

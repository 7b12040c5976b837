-- Keys, arguments and reply declared in revocast.store.contracts (LOGIN_ATTEMPT).
-- FAILURES: the username's HASH; PAIR: STRING; KNOWN: ZSET; USERNAME: STRING -> uid; USER and
-- SESSIONS: of the uid the caller expects ('' for none: both left out). Under a session limit
-- (MAX_SESSIONS) the reply has the user's session ids: the login script must be given them.
-- Count a login attempt before its password is checked, and find the user, in one step, so
-- that attempts sent at once cannot all pass a limit. Limits (0 = off):
--   pair: attempts for the username from this address within the window (from the first);
--     a login forgets them, an unlock (reset_ms) voids those counted before it;
--   user: attempts for the username not forgiven by a login; past the limit, each attempt
--     from an address the user has not logged in from within LOGIN_KNOWN_MS waits 1 s after the
--     previous such attempt, doubling with each attempt counted, at most LOGIN_MAX_DELAY_MS: a
--     delay, never a lock.
-- Returns {'moved', uid}: the name is not the expected uid's, nothing counted, call again
-- expecting that one; {'wait', ms, 'user_address' or 'user'}: refused by that limit;
-- {'go', uid, password hash, sid...}: counted, check the password (uid '' when there is no
-- such user: check a dummy hash); the sids are the user's sessions when asked for.
local uid = redis.call('GET', USERNAME) or ''
if uid ~= expected then
  return {'moved', uid}
end
local now = now_ms()
local pair = 0
if LOGIN_PAIR_LIMIT > 0 then
  pair = tonumber(redis.call('GET', PAIR) or '0')
  local reset = tonumber(redis.call('HGET', FAILURES, 'reset_ms') or '0')
  if pair > 0 and reset > 0 then
    local started = now - LOGIN_WINDOW_S * SECOND_MS + redis.call('PTTL', PAIR)
    if started <= reset then
      redis.call('DEL', PAIR)
      pair = 0
    end
  end
  if pair >= LOGIN_PAIR_LIMIT then
    return {'wait', math.max(redis.call('PTTL', PAIR), 1), 'user_address'}
  end
end
local known = false
if LOGIN_KNOWN_MS > 0 then
  local seen = redis.call('ZSCORE', KNOWN, address)
  known = seen and tonumber(seen) > now - LOGIN_KNOWN_MS
end
if LOGIN_USER_LIMIT > 0 and not known then
  local failures = tonumber(redis.call('HGET', FAILURES, 'n') or '0')
  local wait = tonumber(redis.call('HGET', FAILURES, 'next_ms') or '0') - now
  if failures >= LOGIN_USER_LIMIT and wait > 0 then
    return {'wait', wait, 'user'}
  end
end
if LOGIN_PAIR_LIMIT > 0 then
  pair = redis.call('INCR', PAIR)
  if pair == 1 then redis.call('EXPIRE', PAIR, LOGIN_WINDOW_S) end
  -- A known address that fails this often is not its user's alone: it waits like any other.
  if known and pair >= LOGIN_PAIR_LIMIT then redis.call('ZREM', KNOWN, address) end
end
if LOGIN_USER_LIMIT > 0 then
  local failures = redis.call('HINCRBY', FAILURES, 'n', 1)
  if failures >= LOGIN_USER_LIMIT and not known then  -- the owner's logins do not push it back
    local delay = math.min(LOGIN_FIRST_DELAY_MS * 2 ^ (failures - LOGIN_USER_LIMIT),
      LOGIN_MAX_DELAY_MS)
    redis.call('HSET', FAILURES, 'next_ms', int(now + delay))
  end
  redis.call('EXPIRE', FAILURES, LOGIN_MEMORY_S)
end
if uid == '' then return {'go', '', ''} end
local reply = {'go', uid, redis.call('HGET', USER, 'password_hash') or ''}
if MAX_SESSIONS > 0 then
  for _, sid in ipairs(redis.call('SMEMBERS', SESSIONS)) do reply[#reply + 1] = sid end
end
return reply

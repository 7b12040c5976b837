-- Keys, arguments and reply declared in revocast.store.contracts (LOGIN_ATTEMPT).
-- FAILURES: the username's HASH; PAIR: STRING; KNOWN: ZSET; USERNAME: STRING -> uid; USER and
-- SESSIONS: of the uid the caller expects ('' for none: both left out); sessions: return the
-- user's session ids, which the login script must be given under a session limit.
-- Count a login attempt before its password is checked, and find the user, in one step, so
-- that attempts sent at once cannot all pass a limit. Limits (0 = off):
--   pair: attempts for the username from this address within the window (from the first);
--     a login forgets them, an unlock (reset_ms) voids those counted before it;
--   user: attempts for the username not forgiven by a login; past the limit, each attempt
--     from an address the user has not logged in from within known_ms waits 1 s after the
--     previous such attempt, doubling with each attempt counted, at most max_delay_ms: a
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
if pair_limit > 0 then
  pair = tonumber(redis.call('GET', PAIR) or '0')
  local reset = tonumber(redis.call('HGET', FAILURES, 'reset_ms') or '0')
  if pair > 0 and reset > 0 then
    local started = now - window_s * SECOND_MS + redis.call('PTTL', PAIR)
    if started <= reset then
      redis.call('DEL', PAIR)
      pair = 0
    end
  end
  if pair >= pair_limit then
    return {'wait', math.max(redis.call('PTTL', PAIR), 1), 'user_address'}
  end
end
local known = false
if known_ms > 0 then
  local seen = redis.call('ZSCORE', KNOWN, address)
  known = seen and tonumber(seen) > now - known_ms
end
if user_limit > 0 and not known then
  local failures = tonumber(redis.call('HGET', FAILURES, 'n') or '0')
  local wait = tonumber(redis.call('HGET', FAILURES, 'next_ms') or '0') - now
  if failures >= user_limit and wait > 0 then
    return {'wait', wait, 'user'}
  end
end
if pair_limit > 0 then
  pair = redis.call('INCR', PAIR)
  if pair == 1 then redis.call('EXPIRE', PAIR, window_s) end
  -- A known address that fails this often is not its user's alone: it waits like any other.
  if known and pair >= pair_limit then redis.call('ZREM', KNOWN, address) end
end
if user_limit > 0 then
  local failures = redis.call('HINCRBY', FAILURES, 'n', 1)
  if failures >= user_limit and not known then  -- the owner's logins do not push it back
    local delay = math.min(LOGIN_FIRST_DELAY_MS * 2 ^ (failures - user_limit), max_delay_ms)
    redis.call('HSET', FAILURES, 'next_ms', int(now + delay))
  end
  redis.call('EXPIRE', FAILURES, memory_s)
end
if uid == '' then return {'go', '', ''} end
local reply = {'go', uid, redis.call('HGET', USER, 'password_hash') or ''}
if sessions then
  for _, sid in ipairs(redis.call('SMEMBERS', SESSIONS)) do reply[#reply + 1] = sid end
end
return reply

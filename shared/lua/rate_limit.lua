-- ARGV: prefix, user_key, client_key, max_user_failures, max_client_attempts, window_s, action
-- Login throttling. action 'attempt': count the attempt for the client, and refuse when the
-- client or the username is over its limit; 'failure': count a failed login for the username;
-- 'success': forget the username's failures. A limit of 0 disables that limit.
-- Returns the milliseconds to wait (0: go ahead).
local user_key, client_key = P .. ':rl:user:' .. ARGV[2], P .. ':rl:client:' .. ARGV[3]
local max_user, max_client, window = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local action = ARGV[7]
if action == 'failure' then
  if max_user > 0 and redis.call('INCR', user_key) == 1 then
    redis.call('EXPIRE', user_key, window)
  end
  return 0
end
if action == 'success' then
  redis.call('DEL', user_key)
  return 0
end
if max_client > 0 then
  local attempts = redis.call('INCR', client_key)
  if attempts == 1 then redis.call('EXPIRE', client_key, window) end
  if attempts > max_client then return math.max(redis.call('PTTL', client_key), 1) end
end
if max_user > 0 and tonumber(redis.call('GET', user_key) or '0') >= max_user then
  return math.max(redis.call('PTTL', user_key), 1)
end
return 0

-- KEYS: counter (a username's failures, or a client's attempts)
-- ARGV: action, limit (0 = no limit), window_s
--   count:   count one more (first one starts the window); refuse when over the limit
--   check:   refuse when at or over the limit, without counting
--   forget:  delete the counter (a successful login)
-- Returns the milliseconds to wait (0: go ahead).
local action, limit, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if action == 'forget' then
  redis.call('DEL', KEYS[1])
  return 0
end
if limit == 0 then return 0 end
if action == 'count' then
  local count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], window) end
  if count > limit then return math.max(redis.call('PTTL', KEYS[1]), 1) end
  return 0
end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= limit then
  return math.max(redis.call('PTTL', KEYS[1]), 1)
end
return 0

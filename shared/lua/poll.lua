-- ARGV: prefix, after_id, count
-- Entries after after_id plus what a follower needs to prove it missed none.
-- Returns {epoch|false, exists(0|1), max_deleted_id, entries}
local key = P .. ':events'
if redis.call('EXISTS', key) == 0 then
  return {redis.call('GET', P .. ':epoch'), 0, '0-0', {}}
end
local max_deleted = '0-0'
local info = redis.call('XINFO', 'STREAM', key)
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then max_deleted = info[i + 1] end
end
local entries = redis.call('XRANGE', key, '(' .. ARGV[2], '+', 'COUNT', tonumber(ARGV[3]))
return {redis.call('GET', P .. ':epoch'), 1, max_deleted, entries}

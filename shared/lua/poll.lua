-- ARGV: prefix, after_id, count
-- Entries after after_id plus what a follower needs to prove it missed none: the stream's
-- entries-added counter, length, first and last ids, and the epoch; and the Redis time.
-- Returns {epoch|false, exists(0|1), entries_added, length, first_id, last_id, now_ms, entries}
local key = P .. ':events'
local epoch = redis.call('GET', P .. ':epoch')
local now = int(now_ms())
if redis.call('EXISTS', key) == 0 then
  return {epoch, 0, 0, 0, '0-0', '0-0', now, {}}
end
local added, length, first_id, last_id = 0, 0, '0-0', '0-0'
local info = redis.call('XINFO', 'STREAM', key)
for i = 1, #info, 2 do
  local name = info[i]
  if name == 'entries-added' then added = info[i + 1]
  elseif name == 'length' then length = info[i + 1]
  elseif name == 'last-generated-id' then last_id = info[i + 1]
  elseif name == 'first-entry' and info[i + 1] then first_id = info[i + 1][1]
  end
end
local entries = redis.call('XRANGE', key, '(' .. ARGV[2], '+', 'COUNT', tonumber(ARGV[3]))
return {epoch, 1, added, length, first_id, last_id, now, entries}

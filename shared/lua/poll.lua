#!lua flags=no-writes
-- KEYS: events, epoch, heartbeat (one stream's)     ARGV: after_id, count
-- Entries after after_id, plus what a follower needs to prove it missed none: the stream's
-- position, the epoch, the primary's last heartbeat, this server's time, and the entry at
-- after_id itself (a replica promoted in a failover may have a different one, or none).
-- Runs on replicas. Returns {epoch|false, heartbeat|false, now_ms, exists, entries_added,
-- length, first_id, last_id, entries, fields at after_id|false}
local after, count = ARGV[1], tonumber(ARGV[2])
local position = stream_position(KEYS[1])
local entries, at = {}, false
if position[1] == 1 then
  entries = redis.call('XRANGE', KEYS[1], '(' .. after, '+', 'COUNT', count)
  if after ~= '0-0' then
    local found = redis.call('XRANGE', KEYS[1], after, after)
    if #found == 1 then at = found[1][2] end
  end
end
return {redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), int(now_ms()), position[1],
  position[2], position[3], position[4], position[5], entries, at}

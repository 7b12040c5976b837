#!lua flags=no-writes
-- KEYS: events, epoch, heartbeat, revoked_sessions, revoked_users, revoked_users_until,
--       revoked_roles, revoked_roles_until (one partition's)
-- The partition's revocation state and the stream position it corresponds to, in one step.
-- Runs on replicas. Returns {epoch|false, heartbeat|false, now_ms, entries_added, last_id,
-- sessions (flat sid, until), users (flat uid, not_before, until), roles (same)}
local now = now_ms()
local position = stream_position(KEYS[1])

-- uid, not-before, until triples of a hash + expiry index pair, skipping expired ones.
local function triples(hash, index)
  local live = live_scores(index, now)
  local out = {}
  for i = 1, #live, 2 do
    local nb = redis.call('HGET', hash, live[i])
    if nb then
      out[#out + 1] = live[i]
      out[#out + 1] = nb
      out[#out + 1] = live[i + 1]
    end
  end
  return out
end

return {redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), int(now), position[2],
  position[5], live_scores(KEYS[4], now), triples(KEYS[5], KEYS[6]), triples(KEYS[7], KEYS[8])}

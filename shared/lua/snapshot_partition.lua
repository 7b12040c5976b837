#!lua flags=no-writes
-- KEYS: events, chain, epoch, heartbeat, revoked_sessions, revoked_users, revoked_users_until,
--       revoked_roles, revoked_roles_until (one partition's)
-- The partition's revocation state and the stream position it corresponds to, in one step:
-- the last entry's id (to read on from) and link (the next entry must name it).
-- Runs on replicas. Returns {epoch|false, heartbeat|false, now_ms, last_id, link|false,
-- sessions (flat sid, until), users (flat uid, not_before, until), roles (same)}
local now = now_ms()

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

return {redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4]), int(now), last_id(KEYS[1]),
  redis.call('GET', KEYS[2]), live_scores(KEYS[5], now), triples(KEYS[6], KEYS[7]),
  triples(KEYS[8], KEYS[9])}

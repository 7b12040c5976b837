#!lua flags=no-writes
-- Keys, arguments and reply declared in revocast.store.contracts (SNAPSHOT_PARTITION).
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

return {redis.call('GET', EPOCH), redis.call('GET', HEARTBEAT), int(now), last_id(EVENTS),
  redis.call('GET', CHAIN), live_scores(REVOKED_SESSIONS, now),
  triples(REVOKED_USERS, USERS_UNTIL), triples(REVOKED_ROLES, ROLES_UNTIL)}

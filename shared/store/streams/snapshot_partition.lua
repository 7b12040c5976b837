#!lua flags=no-writes
-- Keys, arguments and reply declared in revocast.store.streams.contracts (SNAPSHOT_PARTITION).
-- One page of the partition's revocation state, with the stream position of the moment it
-- was read: the last entry's id (to read on from) and link (the next entry must name it).
-- A page holds up to `page` entries of each set, in the order of their expiry, after the
-- cursor the caller passes for that set ('' for the first page: from now; '-': that set is
-- done). A page never splits one expiry time, so the next starts strictly after it: an
-- entry is never skipped, whatever was added or pruned between pages (only expired entries
-- are pruned). Runs on replicas. Returns {epoch|false, heartbeat|false, now_ms, last_id,
-- link|false, sessions (flat sid, until), users (flat uid, not_before, until), roles (same),
-- next cursor of sessions, users, roles (false: done)}
local now = now_ms()

-- Flat member, score pairs of `zset` after `after`, at most `page` pairs plus the rest of
-- the last one's score; and the cursor of the next page (false: none left).
local function page_of(zset, after)
  if after == '-' then return {}, false end
  local min = after == '' and int(now) or '(' .. after
  local out = redis.call('ZRANGEBYSCORE', zset, min, '+inf', 'WITHSCORES', 'LIMIT', 0, page)
  if #out < 2 * page then return out, false end
  local last = out[#out]
  while #out > 0 and out[#out] == last do
    out[#out] = nil
    out[#out] = nil
  end
  local tied = redis.call('ZRANGEBYSCORE', zset, last, last, 'WITHSCORES')
  for i = 1, #tied do out[#out + 1] = tied[i] end
  return out, last
end

-- uid, not-before, until triples of a hash + expiry index pair, one page of the index.
local function triples(hash, index, after)
  local live, next_after = page_of(index, after)
  local out = {}
  for i = 1, #live, 2 do
    local nb = redis.call('HGET', hash, live[i])
    if nb then
      out[#out + 1] = live[i]
      out[#out + 1] = nb
      out[#out + 1] = live[i + 1]
    end
  end
  return out, next_after
end

local sessions, next_sessions = page_of(REVOKED_SESSIONS, after_sessions)
local users, next_users = triples(REVOKED_USERS, USERS_UNTIL, after_users)
local roles, next_roles = triples(REVOKED_ROLES, ROLES_UNTIL, after_roles)
return {redis.call('GET', EPOCH), redis.call('GET', HEARTBEAT), int(now), last_id(EVENTS),
  redis.call('GET', CHAIN), sessions, users, roles, next_sessions, next_users, next_roles}

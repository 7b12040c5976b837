-- The partition's Token Status List (draft-ietf-oauth-status-list; revocast.status_list):
-- every session holds one index (its hash's field 'status_idx'), which every access token
-- of the session names. Prepended to every partition script, before partition.lua, whose
-- revocations flag the index in the same step as their event (so the list says INVALID as
-- soon as the stream does). STATUS_BITS and STATUS_LEASES are fixed keys of the partition.
--
-- STATUS_LEASES holds every index ever drawn (so ZCARD is the next new one), scored:
--   > 0  in use: the time (ms) when every token holding it has expired;
--   < 0  free since -score (ms): its bit was cleared then (once its tokens had expired).
-- A freed index is drawn again only STATUS_INDEX_REST_MS (revocast.lifetimes) after its
-- bit was cleared, so that no list still cached anywhere (a list is used for its ttl, at
-- most REVOCAST_STATUS_LIST_TTL_S, plus the issuer's 0.5 s) shows the old holder's INVALID
-- to the new one.
local STATUS_SWEEP = 2  -- expired leases cleared per draw: sessions end no faster than begin

-- The draft numbers bits from the least significant of each byte; SETBIT from the most.
local function status_offset(idx)
  local low = idx % 8
  return idx - low + 7 - low
end

-- Clear the bits of a few indexes whose tokens have all expired; they rest, then are drawn.
local function status_sweep(now)
  local done = redis.call('ZRANGEBYSCORE', STATUS_LEASES, 0, '(' .. int(now), 'LIMIT', 0,
    STATUS_SWEEP)
  for _, member in ipairs(done) do
    redis.call('SETBIT', STATUS_BITS, status_offset(tonumber(member)), 0)
    redis.call('ZADD', STATUS_LEASES, int(-now), member)
  end
end

-- The session's index, drawn now if it has none (a new session, one from before status
-- lists, or one whose index a role change retired): a rested free one, else a new one. Its
-- lease is pushed to until_ms (when the session's last token can have expired), never
-- shortened here.
local function status_index(session_key, now, until_ms)
  local idx = tonumber(redis.call('HGET', session_key, 'status_idx') or '')
  if idx then
    redis.call('ZADD', STATUS_LEASES, 'GT', int(until_ms), int(idx))
    return idx
  end
  status_sweep(now)
  local rested = redis.call('ZRANGEBYSCORE', STATUS_LEASES, '(' .. int(STATUS_INDEX_REST_MS - now),
    '(0', 'LIMIT', 0, 1)
  if #rested > 0 then
    idx = tonumber(rested[1])
  else
    idx = redis.call('ZCARD', STATUS_LEASES)
  end
  redis.call('ZADD', STATUS_LEASES, int(until_ms), int(idx))
  redis.call('HSET', session_key, 'status_idx', int(idx))
  return idx
end

-- The session's tokens are dead: set its index INVALID until they have all expired (now +
-- lifetime_ms, the revocation's own lifetime), and take it from the session (whose next
-- token, if the session lives on, draws a new one). A session without one: nothing.
local function status_invalidate(session_key, now)
  local idx = tonumber(redis.call('HGET', session_key, 'status_idx') or '')
  if not idx then return end
  redis.call('SETBIT', STATUS_BITS, status_offset(idx), 1)
  redis.call('ZADD', STATUS_LEASES, int(now + LIFETIME_MS), int(idx))
  redis.call('HDEL', session_key, 'status_idx')
end

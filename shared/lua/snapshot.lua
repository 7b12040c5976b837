-- ARGV: prefix
-- The whole revocation state and the stream id it corresponds to, in one atomic step.
-- Returns {epoch|false, last_id, entries_added, now_ms, sessions(flat sid,until),
--          users(flat uid,nb,until), claims(flat uid,nb,until), revoked_keys(flat kid,at),
--          jwks(flat kid,jwk)}
local now = now_ms()
local last_id, added = '0-0', 0
if redis.call('EXISTS', P .. ':events') == 1 then
  local info = redis.call('XINFO', 'STREAM', P .. ':events')
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last_id = info[i + 1] end
    if info[i] == 'entries-added' then added = info[i + 1] end
  end
end
local sessions = redis.call('ZRANGEBYSCORE', P .. ':revoked:sessions', int(now), '+inf', 'WITHSCORES')

-- uid, not-before, until triples of a hash + expiry index pair, skipping expired ones.
local function triples(kind)
  local index = redis.call('ZRANGEBYSCORE', P .. ':revoked:' .. kind .. ':until', int(now), '+inf',
    'WITHSCORES')
  local out = {}
  for i = 1, #index, 2 do
    local nb = redis.call('HGET', P .. ':revoked:' .. kind, index[i])
    if nb then
      out[#out + 1] = index[i]
      out[#out + 1] = nb
      out[#out + 1] = index[i + 1]
    end
  end
  return out
end

local keys = redis.call('ZRANGE', P .. ':revoked:keys', 0, -1, 'WITHSCORES')
local jwks = redis.call('HGETALL', P .. ':jwks')
return {redis.call('GET', P .. ':epoch'), last_id, added, int(now), sessions, triples('users'),
  triples('claims'), keys, jwks}

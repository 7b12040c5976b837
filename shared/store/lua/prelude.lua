-- Helpers prepended to every revocast script. Times are Redis server ms.
-- No key name is built in Lua: every key arrives in KEYS (keyspace.py names them all).

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * SECOND_MS + math.floor(tonumber(t[2]) / SECOND_MS)
end

local function int(x)
  return string.format('%d', x)
end

-- The one place events are written (events.py decodes them): type, schema version, the time
-- written, then the event's own fields. Entries older than the retention window are trimmed.
-- Each entry also carries 'prev', the link of the entry before it in this stream, and its own
-- 'link' (a hash of prev and the entry), kept in the chain key: a follower applies an entry
-- only if its prev is the link the follower holds, so no entry can be skipped unseen, even
-- on a promoted replica with another history or from a read that reached another server.
-- EVENT_VERSION, the kinds (SESSION_REVOKED...) and REASON_* are revocast.events' values.

local function emit(stream, chain, now, kind, fields)
  local entry = {'type', kind, 'v', EVENT_VERSION, 'ts_ms', int(now)}
  for _, value in ipairs(fields) do entry[#entry + 1] = value end
  local prev = redis.call('GET', chain) or ''
  local link = string.sub(redis.sha1hex(prev .. '|' .. table.concat(entry, '|')), 1, 16)
  entry[#entry + 1] = 'prev'
  entry[#entry + 1] = prev
  entry[#entry + 1] = 'link'
  entry[#entry + 1] = link
  redis.call('SET', chain, link)
  return redis.call('XADD', stream, 'MINID', int(now - RETENTION_MS), '*', unpack(entry))
end

-- The one place audit entries are written: who did what to whom, and why.
local function audit_entry(stream, actor, action, target, reason, now)
  redis.call('XADD', stream, 'MAXLEN', '~', AUDIT_MAXLEN, '*', 'ts_ms', int(now),
    'actor', actor, 'action', action, 'target', target, 'reason', reason)
end

-- The id a follower reads on from: the stream's last-generated id ('0-0' if none yet).
local function last_id(stream)
  if redis.call('EXISTS', stream) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end

-- Flat {a, b, c, ...} of a ZSET's members with scores at or after now.
local function live_scores(zset, now)
  return redis.call('ZRANGEBYSCORE', zset, int(now), '+inf', 'WITHSCORES')
end

-- Helpers prepended to every revocast script. Times are Redis server ms.
-- No key name is built in Lua: every key arrives in KEYS (keyspace.py names them all).

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(x)
  return string.format('%d', x)
end

-- The one place events are written (events.py decodes them): type, schema version, the time
-- written, then the event's own fields. Entries older than the retention window are trimmed.
local EVENT_VERSION = '1'

local function emit(stream, now, retention_ms, kind, fields)
  local entry = {'type', kind, 'v', EVENT_VERSION, 'ts_ms', int(now)}
  for _, value in ipairs(fields) do entry[#entry + 1] = value end
  return redis.call('XADD', stream, 'MINID', int(now - retention_ms), '*', unpack(entry))
end

-- A stream's position, for snapshots and polls: {exists, entries-added, length, first id,
-- last-generated id}. XINFO parsing lives here only.
local function stream_position(stream)
  if redis.call('EXISTS', stream) == 0 then return {0, 0, 0, '0-0', '0-0'} end
  local added, length, first_id, last_id = 0, 0, '0-0', '0-0'
  local info = redis.call('XINFO', 'STREAM', stream)
  for i = 1, #info, 2 do
    local name = info[i]
    if name == 'entries-added' then added = info[i + 1]
    elseif name == 'length' then length = info[i + 1]
    elseif name == 'last-generated-id' then last_id = info[i + 1]
    elseif name == 'first-entry' and info[i + 1] then first_id = info[i + 1][1]
    end
  end
  return {1, added, length, first_id, last_id}
end

-- Flat {a, b, c, ...} of a ZSET's members with scores at or after now.
local function live_scores(zset, now)
  return redis.call('ZRANGEBYSCORE', zset, int(now), '+inf', 'WITHSCORES')
end

-- ARGV: prefix, uid, new_hash, keep_sid, lifetime_ms, retention_ms
-- Store the new hash and end every other session of the user. Returns how many ended.
local uid, new_hash, keep = ARGV[2], ARGV[3], ARGV[4]
local lifetime_ms, retention_ms = tonumber(ARGV[5]), tonumber(ARGV[6])
local user = P .. ':user:' .. uid
if redis.call('EXISTS', user) == 0 then return redis.error_reply('not_found') end
redis.call('HSET', user, 'password_hash', new_hash)
local now = now_ms()
local ended = 0
for _, entry in ipairs(live_sessions(uid)) do
  if entry[2] ~= keep then
    revoke_session(entry[2], uid, now, lifetime_ms, retention_ms, 'password_changed')
    ended = ended + 1
  end
end
return ended

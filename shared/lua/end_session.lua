-- ARGV: prefix, sid, owner_uid|'', actor|'', lifetime_ms, retention_ms, reason
-- End one existing session. With owner_uid, only the owner's own session (else not_found);
-- with actor, a moderator's action (authorized and audited). Returns the event id.
local sid, owner, actor = ARGV[2], ARGV[3], ARGV[4]
local lifetime_ms, retention_ms, reason = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local uid = redis.call('HGET', P .. ':session:' .. sid, 'uid')
if not uid or (owner ~= '' and uid ~= owner) then
  return redis.error_reply('not_found')
end
local now = now_ms()
if actor ~= '' then
  local level = require_authority(actor, uid)
  if type(level) == 'table' then return level end
  audit(actor, 'end_session', uid .. '/' .. sid, reason, now)
end
return revoke_session(sid, uid, now, lifetime_ms, retention_ms, reason)

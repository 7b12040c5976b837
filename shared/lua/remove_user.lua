-- KEYS: fixed..., username, user, user_sessions, session of each sid below...
-- ARGV: actor, uid, reason, lifetime_ms, retention_ms, sid...
-- Delete a user, authorized and audited in the same step: every session and token ends (a
-- user_revoked event), the name is free again, and any power the user had is withdrawn.
-- Returns {event id, old level, level, version}: the power to copy to the other partitions'
-- AUTHORITY. Errors: not_found, forbidden, retry.
local USERNAME, USER, SESSIONS = KEYS[FIXED + 1], KEYS[FIXED + 2], KEYS[FIXED + 3]
local actor, uid, reason = ARGV[1], ARGV[2], ARGV[3]
local lifetime_ms, retention_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', USER) == 0 then
  return redis.error_reply('not_found no such user: it was removed already')
end
local _, refused = require_authority(actor, USER)
if refused then return refused end
if uid == actor then return redis.error_reply('forbidden you cannot remove yourself') end
local sessions = declared_sessions(SESSIONS, FIXED + 4, 6)
if not sessions then return retry() end
local now = now_ms()
local old_level = level_of(USER)
local event_id = revoke_user(uid, SESSIONS, sessions, now, now, lifetime_ms, retention_ms,
  'removed')
local version = 0
if old_level ~= '' then
  version = redis.call('HINCRBY', USER, 'authority_v', 1)
  set_authority(uid, '', version)
end
if redis.call('GET', USERNAME) == uid then redis.call('DEL', USERNAME) end
redis.call('DEL', USER, SESSIONS)
audit(actor, 'remove', uid, reason, now)
return {event_id, old_level, '', version}

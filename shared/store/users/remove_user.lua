-- Keys, arguments and reply declared in revocast.store.contracts (REMOVE_USER).
-- Delete a user, authorized and audited in the same step: every session and token ends (a
-- user_revoked event), the name is free again, and any power the user had is withdrawn.
-- Returns {event id, old level, level, version}: the power to copy to the other partitions'
-- AUTHORITY. Errors: not_found, forbidden, retry.
if redis.call('EXISTS', USER) == 0 then
  return redis.error_reply('not_found no such user: it was removed already')
end
local _, refused = require_authority(actor, USER)
if refused then return refused end
if uid == actor then return redis.error_reply('forbidden you cannot remove yourself') end
local sessions = declared_sessions(SESSIONS, SESSION_KEYS, sids)
if not sessions then return retry() end
local now = now_ms()
local old_level = level_of(USER)
local event_id = revoke_user(uid, SESSIONS, sessions, now, now, REASON_REMOVED, actor_kind)
local version = 0
if old_level ~= '' then
  version = redis.call('HINCRBY', USER, 'authority_v', 1)
  set_authority(uid, '', version)
end
if redis.call('GET', USERNAME) == uid then redis.call('DEL', USERNAME) end
redis.call('DEL', USER, SESSIONS)
audit(actor, 'remove', uid, reason, now)
return {event_id, old_level, '', version}

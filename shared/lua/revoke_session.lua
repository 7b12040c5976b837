-- KEYS: fixed..., session, user_sessions     ARGV: sid, uid, lifetime_ms, retention_ms, reason
-- Revoke one session (idempotent: a repeat re-records it). Returns the event's stream id.
return revoke_session(KEYS[FIXED + 1], KEYS[FIXED + 2], ARGV[1], ARGV[2], now_ms(),
  tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5])

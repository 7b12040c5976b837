-- ARGV: prefix, sid, uid, lifetime_ms, retention_ms, reason
-- Returns the event's stream id.
return revoke_session(ARGV[2], ARGV[3], now_ms(), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6])

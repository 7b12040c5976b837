-- ARGV: prefix, uid, lifetime_ms, retention_ms, reason
-- Returns the event's stream id.
return revoke_user(ARGV[2], now_ms(), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5])

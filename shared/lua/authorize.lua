-- ARGV: prefix, actor, target_uid|''
-- Returns the actor's authority level for a read, or the error forbidden.
local target = ARGV[3] ~= '' and ARGV[3] or nil
return require_authority(ARGV[2], target)

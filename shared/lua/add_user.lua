-- KEYS: fixed..., username, user      ARGV: uid, username, password_hash, roles_json, actor
-- Create a user, unless the name is taken; audited when an actor is named (an operator).
-- Returns {old level, level, version} of its power.
local USERNAME, USER = KEYS[FIXED + 1], KEYS[FIXED + 2]
local uid, name, hash, roles, actor = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('SET', USERNAME, uid, 'NX') == false then
  return redis.error_reply('conflict this username is taken: pick another one')
end
local now = now_ms()
redis.call('HSET', USER, 'username', name, 'password_hash', hash, 'roles', roles,
  'created_ms', int(now))
if actor ~= '' then audit(actor, 'add', uid, roles, now) end
return authority_changed(uid, USER, '')

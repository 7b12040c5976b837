-- KEYS: fixed..., username, user      ARGV: uid, username, password_hash, roles_json
-- Create a user, unless the name is taken. Returns {old level, level, version} of its power.
local USERNAME, USER = KEYS[FIXED + 1], KEYS[FIXED + 2]
local uid, name, hash, roles = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('SET', USERNAME, uid, 'NX') == false then
  return redis.error_reply('conflict this username is taken: pick another one')
end
redis.call('HSET', USER, 'username', name, 'password_hash', hash, 'roles', roles,
  'created_ms', int(now_ms()))
return authority_changed(uid, USER, '')

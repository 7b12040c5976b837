-- ARGV: prefix, uid, username, password_hash, roles_json
local uid, name, hash, roles = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('SET', P .. ':username:' .. name, uid, 'NX') == false then
  return redis.error_reply('conflict')
end
redis.call('HSET', P .. ':user:' .. uid, 'username', name, 'password_hash', hash,
  'roles', roles, 'created_ms', int(now_ms()))
return uid

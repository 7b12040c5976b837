-- Keys, arguments and reply declared in revocast.store.contracts (ADD_USER).
-- Create a user, unless the name is taken; audited when an actor is named (an operator).
-- Returns {old level, level, version} of its power.
if redis.call('SET', USERNAME, uid, 'NX') == false then
  return redis.error_reply('conflict this username is taken: pick another one')
end
local now = now_ms()
redis.call('HSET', USER, 'username', username, 'password_hash', password_hash,
  'roles', roles_json,
'created_ms', int(now))
if actor ~= '' then audit(actor, 'add', uid, roles_json, now) end
return authority_changed(uid, USER, '')

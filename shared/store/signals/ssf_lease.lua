-- Keys, arguments and reply declared in revocast.store.contracts (SSF_LEASE).
-- LEASE: an SSF push stream's delivery lease (keyspace ssf_lease); owner: the issuer asking.
-- Take the lease if free, keep it if ours: one step, so it cannot be extended for another.
-- Returns 1 when owner holds it for the next ttl_ms, 0 when another issuer does.
local held = redis.call('GET', LEASE)
if held and held ~= owner then return 0 end
redis.call('SET', LEASE, owner, 'PX', ttl_ms)
return 1

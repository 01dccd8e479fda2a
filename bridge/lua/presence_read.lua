-- Presence: a sidecar reads a channel's members with the number of its last notice, in
-- one atomic step, so it knows which notices the list already holds.
-- docs/protocol.md, "Presence across sidecars (Redis)".
-- KEYS[1] comet:{<ch>}:presence:info, KEYS[2] comet:{<ch>}:presence:version
-- -> {version ("0" when none), {user1, info1, user2, info2, ...}}
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}

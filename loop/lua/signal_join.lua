--[[
signal_join.lua: what a grouped signal's write depends on, in one command. Read only.

Run under WATCH of both keys (loop/store/signals.py, Signals._join), in place of a GET and an
HGETALL (one round trip instead of two). Every key shares the namespace hash tag (one slot).

KEYS[1]  string  P:signal:group:<digest>  the issue id the fingerprint's group names
KEYS[2]  hash    P:issue:<id>             the issue the group was read to name (before WATCH)

Returns {group value or nil, the issue's HGETALL as a flat field/value list ({} if absent)}.
]]
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2])}

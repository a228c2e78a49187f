--[[
stats_count.lua: one issue event counted in its day's and its hour's bucket, in one command.

Queued inside the MULTI of the issue write that is the event (loop/store/daystats.py,
DayStatsHook), in place of 2 HINCRBYs and 2 EXPIREs. Every key shares the namespace hash tag.

KEYS[1]  hash  P:stats:day:<YYYY-MM-DD>     the event's day bucket
KEYS[2]  hash  P:stats:hour:<YYYY-MM-DDTHH>  the event's hour bucket

ARGV[1]  the counter: <event>:<type or outcome>
ARGV[2]  the day bucket's TTL (seconds, from this write)
ARGV[3]  the hour bucket's TTL (seconds, from this write)

Returns the hour bucket's new count.
]]
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
local n = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return n

--[[
dispatch_enter.lua: put an issue into the ready sets (or refresh its score), unless it is blocked.

Queued inside the MULTI of an issue or relation write (after that write's own blocked-count
update), so the goal bonus and the blocked count are read at the moment the write applies:
the writer needs no WATCH on either. Every key shares the namespace hash tag.

KEYS[1]  hash  P:dispatch:goalbonus                  projectId -> goal bonus currently applied
KEYS[2]  zset  P:dispatch:ready                      all dispatchable issues, member "<id>|<projectId>"
KEYS[3]  zset  P:dispatch:ready:project:<projectId>  the issue's project set (KEYS[2] when it has none)
KEYS[4]  hash  P:dispatch:issue:<id>                 the issue's dispatch state (field blocked)

ARGV[1]  the member "<id>|<projectId>"
ARGV[2]  the score without goal bonus: priorityWeight + typeBonus - createdAt/86400000
ARGV[3]  the project id, or "" for none

Returns 1 when the issue is in the ready sets afterwards, 0 when it is blocked (and removed).
]]
local member, project = ARGV[1], ARGV[3]
if tonumber(redis.call('HGET', KEYS[4], 'blocked') or '0') > 0 then
  redis.call('ZREM', KEYS[2], member)
  redis.call('ZREM', KEYS[3], member)
  return 0
end
local bonus = 0
if project ~= '' then
  bonus = tonumber(redis.call('HGET', KEYS[1], project) or '0')
end
-- %.17g keeps every digit (a bare number argument would be formatted with 14).
local score = string.format('%.17g', tonumber(ARGV[2]) + bonus)
redis.call('ZADD', KEYS[2], score, member)
redis.call('ZADD', KEYS[3], score, member)
return 1

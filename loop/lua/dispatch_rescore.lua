--[[
dispatch_rescore.lua: set a project's goal bonus and shift its ready issues' scores by the change.

Every key shares the namespace hash tag (one Redis Cluster slot).

KEYS[1]  hash  P:dispatch:goalbonus                  projectId -> bonus currently applied
KEYS[2]  zset  P:dispatch:ready                      all dispatchable issues, member "<id>|<projectId>"
KEYS[3]  zset  P:dispatch:ready:project:<projectId>  the project's dispatchable issues (same members)

ARGV[1]  the project id
ARGV[2]  the bonus that should now apply (integer, 0 = none)

Returns the score delta applied (0 when the bonus was already current).
Cost: O(M log N) for the M ready issues of this project.
]]
local project, bonus = ARGV[1], tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[1], project) or '0')
local delta = bonus - current
if delta == 0 then
  return 0
end
if bonus == 0 then
  redis.call('HDEL', KEYS[1], project)
else
  redis.call('HSET', KEYS[1], project, bonus)
end
local members = redis.call('ZRANGE', KEYS[3], 0, -1)
for _, m in ipairs(members) do
  redis.call('ZINCRBY', KEYS[3], delta, m)
  redis.call('ZINCRBY', KEYS[2], delta, m)
end
return delta

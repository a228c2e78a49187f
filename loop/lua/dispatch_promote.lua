--[[
dispatch_promote.lua: move scheduled issues whose notBefore has come into the ready sets.

The caller read the due members (ZRANGEBYSCORE P:dispatch:scheduled -inf now LIMIT 0 batch) and
their issues, and passes each member with its score without goal bonus; every check is redone
here, at the moment the move applies. A member is taken out of the scheduled set only if it is
still there and due; it enters the ready sets only if its issue is still live, todo, due and
unblocked (a blocked one enters later, when its last blocker resolves: DispatchIssueHook).
Every key shares the namespace hash tag (one Redis Cluster slot).

KEYS[1]  zset  P:dispatch:scheduled                  member "<id>|<projectId>", score = notBefore (ms)
KEYS[2]  hash  P:dispatch:goalbonus                  projectId -> goal bonus currently applied
KEYS[3]  zset  P:dispatch:ready                      all dispatchable issues
then 3 keys per member i (i = 1..n), at KEYS[3 + 3(i-1) + 1..3]:
  +1     hash  P:issue:<id>                          the issue (status, deletedAt, notBefore)
  +2     hash  P:dispatch:issue:<id>                 its dispatch state (field blocked)
  +3     zset  P:dispatch:ready:project:<projectId>  its project's ready set (KEYS[3] when it has none)

ARGV[1]  now (epoch ms; the clock is the caller's)
ARGV[2]  n: number of members
then 3 values per member i, at ARGV[2 + 3(i-1) + 1..3]:
  +1     the member "<id>|<projectId>"
  +2     its score without goal bonus (priorityWeight + typeBonus - createdAt/86400000)
  +3     the project id, or "" for none

Returns {moved into the ready sets, taken out of the scheduled set}.
Cost: O(n log N): a batch of due issues, independent of how many are scheduled.
]]
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local moved, taken = 0, 0
for i = 1, n do
  local member, base, project = ARGV[2 + (i - 1) * 3 + 1], ARGV[2 + (i - 1) * 3 + 2], ARGV[2 + (i - 1) * 3 + 3]
  local issue, state, pready = KEYS[3 + (i - 1) * 3 + 1], KEYS[3 + (i - 1) * 3 + 2], KEYS[3 + (i - 1) * 3 + 3]
  local at = redis.call('ZSCORE', KEYS[1], member)
  if at and tonumber(at) <= now then
    redis.call('ZREM', KEYS[1], member)
    taken = taken + 1
    local f = redis.call('HMGET', issue, 'status', 'deletedAt', 'notBefore')
    local blocked = tonumber(redis.call('HGET', state, 'blocked') or '0')
    if f[1] == 'todo' and not f[2] and (not f[3] or tonumber(f[3]) <= now) and blocked <= 0 then
      local bonus = 0
      if project ~= '' then
        bonus = tonumber(redis.call('HGET', KEYS[2], project) or '0')
      end
      -- %.17g keeps every digit (as dispatch_enter.lua)
      local score = string.format('%.17g', tonumber(base) + bonus)
      redis.call('ZADD', KEYS[3], score, member)
      if pready ~= KEYS[3] then
        redis.call('ZADD', pready, score, member)
      end
      moved = moved + 1
    end
  end
end
return {moved, taken}

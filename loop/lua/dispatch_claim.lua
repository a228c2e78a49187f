--[[
dispatch_claim.lua: atomically claim the best eligible issue among the candidates given.

The caller reads the top candidates of the source ready set (ZREVRANGE) and passes each
candidate's keys here, because a script may only touch keys listed in KEYS (Redis Cluster)
and the winning issue is not known in advance. The script re-checks every candidate in
order, drops stale entries it meets (no longer todo, deleted, or blocked), and claims the
first eligible one: out of the ready sets, status in_progress with the status indexes and
per-project counts and chain activity updated as Issues._reindex would, a new active session
and its lease.
Every key shares the namespace hash tag (one Redis Cluster slot).

KEYS[1]  zset  P:dispatch:ready                      all dispatchable issues; member "<id>|<projectId>",
                                                     score = weight - createdAt/86400000
KEYS[2]  zset  the source set: KEYS[1], or P:dispatch:ready:project:<projectId> for a project filter
KEYS[3]  zset  P:dispatch:leases                     active session id -> lease expiry (epoch ms)
KEYS[4]  zset  P:idx:issues:status:todo              live todo issues, score = issue number
KEYS[5]  zset  P:idx:issues:status:in_progress       live in_progress issues, score = issue number
KEYS[6]  hash  P:counts:project_status               "<projectId>|<status>" -> live issue count
KEYS[7]  zset  P:idx:issues:roots                    root issues by latest chain activity (dashboard)
KEYS[8]  hash  P:session:<sessionId>                 the session to create (must not exist)
then 4 keys per candidate i (i = 1..n), at KEYS[8 + 4(i-1) + 1..4]:
  +1     hash  P:issue:<id>                          the issue
  +2     hash  P:dispatch:issue:<id>                 its dispatch state (fields blocked, session, strikes)
  +3     zset  P:dispatch:ready:project:<projectId>  its project's ready set (KEYS[1] when it has none)
  +4     zset  P:issue:<id>:sessions                 its sessions, score = claimedAt

ARGV[1]  now (epoch ms; the clock is the caller's)
ARGV[2]  lease expiry (epoch ms)
ARGV[3]  session id
ARGV[4]  agent name (the API key's name)
ARGV[5]  SHA-256 hex of the claim token
ARGV[6]  K: how many fresh candidates to return when none of these could be claimed
ARGV[7]  n: number of candidates
ARGV[7 + i]  member of candidate i ("<id>|<projectId>")

Returns {"ok", member, <HGETALL of the claimed issue...>}, or {"retry", <up to K members of the
source set, best first>} when every candidate was taken or stale, or {"empty"}.
Cost: O(n log N) for n candidates and N ready issues, independent of blocked or claimed issues.
]]
local now, expires, sid = ARGV[1], ARGV[2], ARGV[3]
local n = tonumber(ARGV[7])
local FIXED_ARGV, FIXED_KEYS = 7, 8

for i = 1, n do
  local member = ARGV[FIXED_ARGV + i]
  local base = FIXED_KEYS + (i - 1) * 4
  local issue, state, pready, sessions = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4]
  if redis.call('ZSCORE', KEYS[2], member) then
    local f = redis.call('HMGET', issue, 'status', 'deletedAt', 'number', 'projectId', 'id', 'parentId')
    local blocked = tonumber(redis.call('HGET', state, 'blocked') or '0')
    redis.call('ZREM', KEYS[1], member)
    if pready ~= KEYS[1] then
      redis.call('ZREM', pready, member)
    end
    if f[1] == 'todo' and not f[2] and blocked <= 0 and f[5] then
      local id, number, project = f[5], f[3], f[4]
      redis.call('HSET', issue, 'status', 'in_progress', 'updatedAt', now, 'agentSessionId', sid)
      redis.call('HDEL', issue, 'completedAt')
      redis.call('ZREM', KEYS[4], id)
      redis.call('ZADD', KEYS[5], number, id)
      if project then
        redis.call('HINCRBY', KEYS[6], project .. '|todo', -1)
        redis.call('HINCRBY', KEYS[6], project .. '|in_progress', 1)
      end
      if f[6] then
        redis.call('ZADD', KEYS[7], 'XX', 'GT', now, f[6])
      else
        redis.call('ZADD', KEYS[7], 'GT', now, id)
      end
      redis.call('HSET', state, 'session', sid)
      redis.call('HSET', KEYS[8], 'id', sid, 'issueId', id, 'agentName', ARGV[4], 'status', 'active',
        'claimedAt', now, 'expiresAt', expires, 'tokenHash', ARGV[5])
      redis.call('ZADD', KEYS[3], expires, sid)
      redis.call('ZADD', sessions, now, sid)
      local out = {'ok', member}
      for _, v in ipairs(redis.call('HGETALL', issue)) do
        out[#out + 1] = v
      end
      return out
    end
    -- otherwise the entry was stale (claimed, blocked or deleted meanwhile): dropped above
  end
end

local fresh = redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[6]) - 1)
if #fresh == 0 then
  return {'empty'}
end
local out = {'retry'}
for _, m in ipairs(fresh) do
  out[#out + 1] = m
end
return out

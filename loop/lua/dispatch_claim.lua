--[[
dispatch_claim.lua: atomically claim the best eligible issue, if the caller passed its keys.

A script may only touch keys listed in KEYS (Redis Cluster) and the winning issue is not known
in advance, so the caller passes candidates: the head of the source ready set as it last saw
it (a fresh ZREVRANGE, or the list this script returned after the caller's previous claim),
plus the members the caller's process last put into the set (a re-opened issue: Claimer.entered).
The script claims the set's *current* best member if it is among the candidates (dropping any
stale entry it meets at the head: no longer todo, deleted or blocked); otherwise it claims
nothing and returns the current head so the caller can retry. So a claim is always the best
eligible issue at the moment it runs, however old the caller's list was.

Claiming: out of both ready sets, status in_progress with the status indexes, per-project
counts and chain activity updated as Issues._reindex would, a new active session and its lease.
Every key shares the namespace hash tag (one Redis Cluster slot).

KEYS[1]  zset  P:dispatch:ready                      all dispatchable issues; member "<id>|<projectId>",
                                                     score = weight - createdAt/86400000
KEYS[2]  zset  the source set: KEYS[1], or P:dispatch:ready:project:<projectId> for a project filter
KEYS[3]  zset  P:dispatch:leases                     active session id -> lease expiry (epoch ms)
KEYS[4]  string P:bits:issues:status:todo            bitmap of live todo issues (bit <number>)
KEYS[5]  string P:bits:issues:status:in_progress     bitmap of live in_progress issues
KEYS[6]  hash  P:counts:project_status               "<projectId>|<status>" -> live issue count
KEYS[7]  zset  P:idx:issues:roots                    root issues by latest chain activity (dashboard)
KEYS[8]  hash  P:session:<sessionId>                 the session to create (must not exist)
KEYS[9]  hash  P:counts:project_status_type          "<projectId>|<status>|<type>" -> live issue count
KEYS[10] zset  P:dispatch:scheduled                  scheduled todo issues, score = notBefore (epoch ms)
then 4 keys per candidate i (i = 1..n), at KEYS[10 + 4(i-1) + 1..4]:
  +1     hash  P:issue:<id>                          the issue
  +2     hash  P:dispatch:issue:<id>                 its dispatch state (fields blocked, session, strikes)
  +3     zset  P:dispatch:ready:project:<projectId>  its project's ready set (KEYS[1] when it has none)
  +4     zset  P:issue:<id>:sessions                 its sessions, score = claimedAt

ARGV[1]  now (epoch ms; the clock is the caller's)
ARGV[2]  lease expiry (epoch ms)
ARGV[3]  session id
ARGV[4]  agent name (the API key's name)
ARGV[5]  SHA-256 hex of the claim token
ARGV[6]  K: how many members of the source set a retry returns (>= 1)
ARGV[7]  how many members of the source set to return after a claim, as the next candidates (0: none)
ARGV[8]  "1" to first check for expired leases (answer {"due"} if there is one), "0" to skip
ARGV[9]  "full" to return every field of the claimed issue as field/value pairs, "brief" for the
         values of id, number, title, type, priority, status, projectId in that order
ARGV[10] "1" to first check for scheduled issues that fell due (answer {"scheduled"}), "0" to skip
ARGV[11] n: number of candidates
ARGV[11 + i]  member of candidate i ("<id>|<projectId>")

Returns one of:
  {"ok", member, m, <m next candidates>, <the claimed issue: pairs or brief values, see ARGV[9]>}
  {"retry", <up to K members of the source set, best first>}   the best is not a candidate
  {"empty"}                                                     nothing is eligible
  {"due"}                                                       a lease has expired: sweep first
  {"scheduled"}            a scheduled issue fell due: move due issues into the ready sets first
                           (dispatch_promote.lua: this script cannot name their keys in advance)
Cost: O(log N) per step for N ready issues, independent of blocked, claimed or scheduled issues
(the due check is one O(log S) ZRANGEBYSCORE of the S scheduled issues).
]]
local now, expires, sid = ARGV[1], ARGV[2], ARGV[3]
local k, after = tonumber(ARGV[6]), tonumber(ARGV[7])
local n = tonumber(ARGV[11])
local FIXED_ARGV, FIXED_KEYS = 11, 10
local BRIEF = {'id', 'number', 'title', 'type', 'priority', 'status', 'projectId'}

if ARGV[8] == '1' and redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1)[1] then
  return {'due'}
end
if ARGV[10] == '1' and redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', now, 'LIMIT', 0, 1)[1] then
  return {'scheduled'}
end

local position = {}
for i = 1, n do
  position[ARGV[FIXED_ARGV + i]] = i
end

while true do
  local member = redis.call('ZREVRANGE', KEYS[2], 0, 0)[1]
  if not member then
    return {'empty'}
  end
  local i = position[member]
  if not i then
    break
  end
  local base = FIXED_KEYS + (i - 1) * 4
  local issue, state, pready, sessions = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4]
  local f = redis.call('HMGET', issue, 'status', 'deletedAt', 'number', 'projectId', 'id', 'parentId', 'type')
  local blocked = tonumber(redis.call('HGET', state, 'blocked') or '0')
  redis.call('ZREM', KEYS[1], member)
  if pready ~= KEYS[1] then
    redis.call('ZREM', pready, member)
  end
  if f[1] == 'todo' and not f[2] and blocked <= 0 and f[5] then
    local id, number, project = f[5], f[3], f[4]
    -- (a todo issue has no completedAt: Issues._apply clears it whenever status is not done)
    redis.call('HSET', issue, 'status', 'in_progress', 'updatedAt', now, 'agentSessionId', sid)
    redis.call('SETBIT', KEYS[4], number, 0)
    redis.call('SETBIT', KEYS[5], number, 1)
    if project then
      redis.call('HINCRBY', KEYS[6], project .. '|todo', -1)
      redis.call('HINCRBY', KEYS[6], project .. '|in_progress', 1)
      if f[7] then
        redis.call('HINCRBY', KEYS[9], project .. '|todo|' .. f[7], -1)
        redis.call('HINCRBY', KEYS[9], project .. '|in_progress|' .. f[7], 1)
      end
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
    local nextk = {}
    if after > 0 then
      nextk = redis.call('ZREVRANGE', KEYS[2], 0, after - 1)
    end
    local out = {'ok', member, #nextk}
    for _, m in ipairs(nextk) do
      out[#out + 1] = m
    end
    if ARGV[9] == 'full' then
      for _, v in ipairs(redis.call('HGETALL', issue)) do
        out[#out + 1] = v
      end
    else
      local values = redis.call('HMGET', issue, unpack(BRIEF))
      for j = 1, #BRIEF do
        out[#out + 1] = values[j]  -- false (absent) becomes a nil reply
      end
    end
    return out
  end
  -- a stale entry (claimed, blocked or deleted meanwhile) was at the head: dropped above
end

local out = {'retry'}
for _, m in ipairs(redis.call('ZREVRANGE', KEYS[2], 0, k - 1)) do
  out[#out + 1] = m
end
return out

--[[
prompt_context.lua: phase 1 of a prompt's context (two round trips in all, three when a relation
names an issue phase 2 did not read): everything whose key is known from the issue row, returned
as one JSON string. Phase 2 (prompt_rows.lua) then reads the rows these ids name, each one
declared in its KEYS.

Every key this script touches is in KEYS (Redis Cluster; the project's Lua rule); all share the
namespace hash tag. Read only: no writes, no clock.

KEYS[1]  hash    P:issue:<parentId>                  the parent (ignored when ARGV[2] = "0")
KEYS[2]  zset    P:idx:issues:parentId:<id>          siblings (parent's children) or own children,
                                                     score = issue number (creation order)
KEYS[3]  set     P:issue:<id>:labels                 label ids
KEYS[4]  zset    P:issue:<id>:relations              relation ids
KEYS[5]  hash    P:project:<projectId>               the project (ignored when ARGV[3] = "0")
KEYS[6]  zset    P:idx:goals                         live goals, score = row seq (read only when the project
                                                     has no goalId)
KEYS[7]  hash    P:dispatch:blockers:<id>            issues blocking this one (ignored when ARGV[4] = "0")
KEYS[8]  hash    P:dispatch:blocking:<id>            issues this one blocks (ignored when ARGV[4] = "0")
KEYS[9]  zset    P:issue:<id>:sessions               agent sessions (ignored when ARGV[5] = "0")
KEYS[10] set     P:dispatch:project_goals:<projectId>  goals whose projectId is the project (read when
                                                     ARGV[8] = "1" and the project has no goalId)

ARGV[1]  the issue id
ARGV[2]  "1" if the issue has a parent      ARGV[3]  "1" if it has a project
ARGV[4]  "1" to read the dispatch blocker edges      ARGV[5]  "1" to read the sessions
ARGV[6]  limit: at most this many siblings/children (the most recent, by issue number)
ARGV[7]  limit: at most this many sessions (the most recent by claimedAt)
ARGV[8]  "1": the project's goals are the members of KEYS[10] (dispatch keeps that map), ordered by
         their KEYS[6] score, so a claim reads the project's few goals, not every live goal;
         "0": every member of KEYS[6]

Returns a JSON object: parent, project (flat [field, value, ...] arrays, or false); family
(ids of at most ARGV[6] others in KEYS[2], creation order, the issue itself left out) and
familyTotal (how many others KEYS[2] holds); labels (ids, sorted); relations, sessions (ids,
zset order; sessions: at most ARGV[7], the most recent, oldest first) and sessionsTotal (ZCARD of
KEYS[9]); blockers, blocking (ids); goalId (the project's own goalId, or false) and goals (live goal
ids in creation order, only when the project has no goalId: see ARGV[8]). Cost: bounded by the
limits, the issue's labels and relations and the project's goals, never the backlog. Empty arrays may be encoded as {}
(cjson cannot tell them apart).
]]
local iid = ARGV[1]
local has_parent, has_project = ARGV[2] == '1', ARGV[3] == '1'
local edges, own_sessions = ARGV[4] == '1', ARGV[5] == '1'
local limit, session_limit, goal_map = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'

local out = {parent = false, project = false, goalId = false, goals = {}, blockers = {}, blocking = {},
             sessions = {}, sessionsTotal = 0}
if has_parent then
  local raw = redis.call('HGETALL', KEYS[1])
  if #raw > 0 then out.parent = raw end
end

-- The most recent `limit` others: a parent with 10,000 children must not cost 10,000 rows a claim.
local total = redis.call('ZCARD', KEYS[2])
if redis.call('ZSCORE', KEYS[2], iid) then total = total - 1 end
local recent, family = redis.call('ZREVRANGE', KEYS[2], 0, limit), {}
for i = #recent, 1, -1 do
  if recent[i] ~= iid then family[#family + 1] = recent[i] end
end
if #family > limit then table.remove(family, 1) end  -- the issue itself was not among them
out.family, out.familyTotal = family, total

local labels = redis.call('SMEMBERS', KEYS[3])
table.sort(labels)
out.labels = labels
out.relations = redis.call('ZRANGE', KEYS[4], 0, -1)
if edges then
  out.blockers = redis.call('HKEYS', KEYS[7])
  out.blocking = redis.call('HKEYS', KEYS[8])
end
if has_project then
  local raw = redis.call('HGETALL', KEYS[5])
  if #raw > 0 then
    out.project = raw
    local goal_id = redis.call('HGET', KEYS[5], 'goalId')
    if goal_id and goal_id ~= '' then
      out.goalId = goal_id
    else
      if goal_map then
        -- The project's goals only (a few), live ones in creation order like the full index.
        local ranked = {}
        for _, gid in ipairs(redis.call('SMEMBERS', KEYS[10])) do
          local seq = redis.call('ZSCORE', KEYS[6], gid)
          if seq then ranked[#ranked + 1] = {tonumber(seq), gid} end
        end
        table.sort(ranked, function(a, b) return a[1] < b[1] end)
        local goals = {}
        for i, pair in ipairs(ranked) do goals[i] = pair[2] end
        out.goals = goals
      else
        out.goals = redis.call('ZRANGE', KEYS[6], 0, -1)
      end
    end
  end
end
if own_sessions then
  -- The most recent few (an issue re-opened and re-claimed for months must not cost every session).
  local recent, sessions = redis.call('ZREVRANGE', KEYS[9], 0, session_limit - 1), {}
  for i = #recent, 1, -1 do sessions[#sessions + 1] = recent[i] end
  out.sessions, out.sessionsTotal = sessions, redis.call('ZCARD', KEYS[9])
end
return cjson.encode(out)

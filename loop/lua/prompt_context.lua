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
KEYS[6]  zset    P:idx:goals                         live goals (read only when the project has no goalId)
KEYS[7]  hash    P:dispatch:blockers:<id>            issues blocking this one (ignored when ARGV[4] = "0")
KEYS[8]  hash    P:dispatch:blocking:<id>            issues this one blocks (ignored when ARGV[4] = "0")
KEYS[9]  zset    P:issue:<id>:sessions               agent sessions (ignored when ARGV[5] = "0")

ARGV[1]  the issue id
ARGV[2]  "1" if the issue has a parent      ARGV[3]  "1" if it has a project
ARGV[4]  "1" to read the dispatch blocker edges      ARGV[5]  "1" to read the sessions
ARGV[6]  limit: at most this many siblings/children (the most recent, by issue number)

Returns a JSON object: parent, project (flat [field, value, ...] arrays, or false); family
(ids of at most ARGV[6] others in KEYS[2], creation order, the issue itself left out) and
familyTotal (how many others KEYS[2] holds); labels (ids, sorted); relations, sessions (ids,
zset order); blockers, blocking (ids); goalId (the project's own goalId, or false) and goals (ids
of KEYS[6] in order, only when the project has no goalId). Empty arrays may be encoded as {}
(cjson cannot tell them apart).
]]
local iid = ARGV[1]
local has_parent, has_project = ARGV[2] == '1', ARGV[3] == '1'
local edges, own_sessions = ARGV[4] == '1', ARGV[5] == '1'
local limit = tonumber(ARGV[6])

local out = {parent = false, project = false, goalId = false, goals = {}, blockers = {}, blocking = {},
             sessions = {}}
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
      out.goals = redis.call('ZRANGE', KEYS[6], 0, -1)
    end
  end
end
if own_sessions then out.sessions = redis.call('ZRANGE', KEYS[9], 0, -1) end
return cjson.encode(out)

--[[
prompt_context.lua: everything a prompt's context needs, in one command, as one JSON string;
optionally counts one use of the template version the caller expects to render.

Replaces three pipelined round trips (the issue's neighbourhood, then the rows it names, then
relation targets and the goal): each command costs the Python client far more than the server.
Every key shares the namespace hash tag (one Redis Cluster slot). Keys known before the call
are in KEYS; the rows they name (siblings/children, labels, relations, goals, sessions, relation
targets) can only be known inside the script, so their keys are built from the prefixes in
ARGV (each is ``Keys.<builder>("")``, i.e. the key of that kind minus the id).

KEYS[1]   hash    P:issue:<parentId>                  the parent (ignored when ARGV[2] = "0")
KEYS[2]   zset    P:idx:issues:parentId:<id>          siblings (parent's children) or own children
KEYS[3]   set     P:issue:<id>:labels                 label ids
KEYS[4]   zset    P:issue:<id>:relations              relation ids
KEYS[5]   hash    P:project:<projectId>               the project (ignored when ARGV[3] = "0")
KEYS[6]   zset    P:idx:goals                         live goals (ignored when ARGV[3] = "0")
KEYS[7]   string  P:prompts:generation                template catalog generation
KEYS[8]   hash    P:dispatch:blockers:<id>            issues blocking this one (ignored when ARGV[4] = "0")
KEYS[9]   hash    P:dispatch:blocking:<id>            issues this one blocks (ignored when ARGV[4] = "0")
KEYS[10]  zset    P:issue:<id>:sessions               agent sessions (ignored when ARGV[5] = "0")
KEYS[11]  hash    P:prompt_version:<versionId>        version to count a use of (ignored when ARGV[11] = "")

ARGV[1]   the issue id
ARGV[2]   "1" if the issue has a parent     ARGV[3]  "1" if it has a project
ARGV[4]   "1" to read the dispatch blocker edges     ARGV[5]  "1" to read the sessions
ARGV[6]   issue key prefix     ARGV[7]  label key prefix     ARGV[8]  relation key prefix
ARGV[9]   goal key prefix      ARGV[10] session key prefix
ARGV[11]  the catalog generation the caller selected KEYS[11] with ("" = count nothing): the use
          is counted (HINCRBY usageCount 1, only if the version hash exists) only when the
          generation is unchanged, so the caller's choice is still the one selection makes
ARGV[12]  n, the number of summary fields; ARGV[13 .. 12+n] summary fields (siblings/children);
          ARGV[13+n ..] reference fields (relation targets). No clock: the only write is the count.

Returns a JSON object: parent, project, goal (flat [field, value, ...] arrays, or false),
family (HMGET of the summary fields per sibling/child, the issue itself left out), labels
(flat arrays, ids sorted), relations ([type, relatedIssueId] per relation), blockers, blocking
(ids), sessions (flat arrays), targets (ids) and refs (HMGET of the reference fields per
target), generation (string or false), counted (1 if the use was counted). Empty arrays may be
encoded as {} (cjson cannot tell them apart).
]]
local iid = ARGV[1]
local has_parent, has_project = ARGV[2] == '1', ARGV[3] == '1'
local edges, own_sessions = ARGV[4] == '1', ARGV[5] == '1'
local p_issue, p_label, p_relation, p_goal, p_session = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local expected = ARGV[11]
local n = tonumber(ARGV[12])
local summary, refs_fields = {}, {}
for i = 13, 12 + n do summary[#summary + 1] = ARGV[i] end
for i = 13 + n, #ARGV do refs_fields[#refs_fields + 1] = ARGV[i] end

local out = {parent = false, project = false, goal = false, counted = 0}
if has_parent then
  local raw = redis.call('HGETALL', KEYS[1])
  if #raw > 0 then out.parent = raw end
end

local family = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if id ~= iid then family[#family + 1] = redis.call('HMGET', p_issue .. id, unpack(summary)) end
end
out.family = family

local label_ids = redis.call('SMEMBERS', KEYS[3])
table.sort(label_ids)
local labels = {}
for _, id in ipairs(label_ids) do labels[#labels + 1] = redis.call('HGETALL', p_label .. id) end
out.labels = labels

local relations, targets, seen = {}, {}, {}
local function target(id)
  if id and id ~= '' and not seen[id] then
    seen[id] = true
    targets[#targets + 1] = id
  end
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  local r = redis.call('HMGET', p_relation .. id, 'type', 'relatedIssueId')
  if r[1] and r[2] then
    relations[#relations + 1] = r
    if r[1] == 'blocked_by' or r[1] == 'blocks' then target(r[2]) end
  end
end
out.relations = relations
out.blockers, out.blocking = {}, {}
if edges then
  out.blockers = redis.call('HKEYS', KEYS[8])
  out.blocking = redis.call('HKEYS', KEYS[9])
  for _, id in ipairs(out.blockers) do target(id) end
  for _, id in ipairs(out.blocking) do target(id) end
end
local refs = {}
for i, id in ipairs(targets) do refs[i] = redis.call('HMGET', p_issue .. id, unpack(refs_fields)) end
out.targets, out.refs = targets, refs

if has_project then
  local raw = redis.call('HGETALL', KEYS[5])
  if #raw > 0 then
    out.project = raw
    local own = redis.call('HMGET', KEYS[5], 'id', 'goalId')
    local pid, goal_id = own[1], own[2]
    if not goal_id or goal_id == '' then
      -- The first goal naming the project, preferring an active one (improvement 7).
      goal_id = nil
      local first = nil
      for _, gid in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
        local g = redis.call('HMGET', p_goal .. gid, 'projectId', 'status')
        if g[1] == pid then
          first = first or gid
          if g[2] == 'active' then goal_id = gid break end
        end
      end
      goal_id = goal_id or first
    end
    if goal_id then
      local g = redis.call('HGETALL', p_goal .. goal_id)
      if #g > 0 then out.goal = g end
    end
  end
end

local sessions = {}
if own_sessions then
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[10], 0, -1)) do
    local raw = redis.call('HGETALL', p_session .. sid)
    if #raw > 0 then sessions[#sessions + 1] = raw end
  end
end
out.sessions = sessions

local generation = redis.call('GET', KEYS[7])
out.generation = generation
if expected ~= '' and (generation or '') == expected and redis.call('EXISTS', KEYS[11]) == 1 then
  redis.call('HINCRBY', KEYS[11], 'usageCount', 1)
  out.counted = 1
end
return cjson.encode(out)

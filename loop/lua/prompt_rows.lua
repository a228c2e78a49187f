--[[
prompt_rows.lua: phase 2 of a prompt's context: the rows phase 1 (prompt_context.lua) named, as
one JSON string, and the template catalog generation. Also the optional third trip: the targets
of relations phase 2 found (only the targets group). Read only: no writes, no clock (the use of
the rendered version is counted afterwards, in one command: PromptService.render_for_dispatch).

Every key this script touches is in KEYS (Redis Cluster; the project's Lua rule); all share the
namespace hash tag. The caller passes the rows' keys in groups, in this order, with the group
sizes in ARGV[3..8]:

KEYS[1]  string  P:prompts:generation                template catalog generation
then     hash    P:issue:<id>        x ARGV[3]       siblings/children (HMGET of the summary fields)
         hash    P:label:<id>        x ARGV[4]       labels (HGETALL)
         hash    P:relation:<id>     x ARGV[5]       relations (HMGET type, relatedIssueId)
         hash    P:goal:<id>         x ARGV[6]       goal candidates (see ARGV[1])
         hash    P:session:<id>      x ARGV[7]       agent sessions (HGETALL)
         hash    P:issue:<id>        x ARGV[8]       blocker/blocking targets (HMGET of the reference fields)

ARGV[1]  "1": the goal group is the project's own goal (HGETALL); "0": it is every live goal, and
         the goal is the first naming project ARGV[2], preferring an active one (improvement 7)
ARGV[2]  the project id       ARGV[3..8]  the group sizes above
ARGV[9]  s, the number of summary fields     ARGV[10] r, the number of reference fields
ARGV[11 .. 10+s] summary fields; ARGV[11+s .. 10+s+r] reference fields;
ARGV[11+s+r ..]  the target ids, one per target key (same order).

Returns a JSON object: family (HMGET replies), labels, sessions (flat [field, value, ...]
arrays), relations ([type, relatedIssueId] per existing relation), goal (flat array or false),
targets (ids) and refs (HMGET replies, same order), generation (string or false). Empty arrays
may be encoded as {} (cjson cannot tell them apart).
]]
local own_goal, project_id = ARGV[1] == '1', ARGV[2]
local n = {}
for i = 3, 8 do n[#n + 1] = tonumber(ARGV[i]) end
local s, r = tonumber(ARGV[9]), tonumber(ARGV[10])
local summary, refs_fields, target_ids = {}, {}, {}
for i = 11, 10 + s do summary[#summary + 1] = ARGV[i] end
for i = 11 + s, 10 + s + r do refs_fields[#refs_fields + 1] = ARGV[i] end
for i = 11 + s + r, #ARGV do target_ids[#target_ids + 1] = ARGV[i] end

local k = 1
local function group(size, fn)
  local rows = {}
  for _ = 1, size do
    k = k + 1
    local row = fn(KEYS[k])
    if row then rows[#rows + 1] = row end
  end
  return rows
end
local function all(key)
  local raw = redis.call('HGETALL', key)
  if #raw > 0 then return raw end
  return nil
end

local out = {goal = false}
out.family = group(n[1], function(key) return redis.call('HMGET', key, unpack(summary)) end)
out.labels = group(n[2], all)
out.relations = group(n[3], function(key)
  local row = redis.call('HMGET', key, 'type', 'relatedIssueId')
  if row[1] and row[2] then return row end
  return nil
end)
local goals = {}
for i = 1, n[4] do goals[i] = KEYS[k + i] end
k = k + n[4]
if own_goal then
  if goals[1] then out.goal = all(goals[1]) or false end
else
  local chosen, first = nil, nil
  for _, key in ipairs(goals) do
    local g = redis.call('HMGET', key, 'projectId', 'status')
    if g[1] == project_id then
      first = first or key
      if g[2] == 'active' then chosen = key break end
    end
  end
  chosen = chosen or first
  if chosen then out.goal = all(chosen) or false end
end
out.sessions = group(n[5], all)
out.refs = group(n[6], function(key) return redis.call('HMGET', key, unpack(refs_fields)) end)
out.targets = target_ids

out.generation = redis.call('GET', KEYS[1])
return cjson.encode(out)

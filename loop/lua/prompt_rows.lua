--[[
prompt_rows.lua: phase 2 of a prompt's context: the rows phase 1 (prompt_context.lua) named, as
one JSON string; optionally counts one use of the template version the caller expects to render
and records it on the claim's agent session (dispatch's bookkeeping). Also the optional third
trip: the targets of relations phase 2 found (only the targets group).

Every key this script touches is in KEYS (Redis Cluster; the project's Lua rule); all share the
namespace hash tag. The caller passes the rows' keys in groups, in this order, with the group
sizes in ARGV[5..10]:

KEYS[1]  string  P:prompts:generation                template catalog generation
KEYS[2]  hash    P:prompt_version:<versionId>        version to count a use of (ignored when ARGV[1] = "")
KEYS[3]  hash    P:session:<sessionId>               the claim's session: versionId set (ignored when ARGV[2] = "")
KEYS[4]  hash    P:dispatch:version:<versionId>      dispatch's counters of that version: dispatched + 1
                                                     (ignored when ARGV[2] = "")
then     hash    P:issue:<id>        x ARGV[5]       siblings/children (HMGET of the summary fields)
         hash    P:label:<id>        x ARGV[6]       labels (HGETALL)
         hash    P:relation:<id>     x ARGV[7]       relations (HMGET type, relatedIssueId)
         hash    P:goal:<id>         x ARGV[8]       goal candidates (see ARGV[3])
         hash    P:session:<id>      x ARGV[9]       agent sessions (HGETALL)
         hash    P:issue:<id>        x ARGV[10]      blocker/blocking targets (HMGET of the reference fields)

ARGV[1]  the catalog generation the caller selected KEYS[2] with ("" = count nothing): the use is
         counted (HINCRBY usageCount 1, only if the version hash exists) only when the generation
         is unchanged, so the caller's choice is still the one selection makes
ARGV[2]  the version id to record on the session ("" = record nothing): when the use is counted,
         also HSET KEYS[3] versionId ARGV[2] and HINCRBY KEYS[4] dispatched 1 (what dispatch
         writes for a claim; loop.dispatch.sessions.stage_version)
ARGV[3]  "1": the goal group is the project's own goal (HGETALL); "0": it is every live goal, and
         the goal is the first naming project ARGV[4], preferring an active one (improvement 7)
ARGV[4]  the project id       ARGV[5..10]  the group sizes above
ARGV[11] s, the number of summary fields     ARGV[12] r, the number of reference fields
ARGV[13 .. 12+s] summary fields; ARGV[13+s .. 12+s+r] reference fields;
ARGV[13+s+r ..]  the target ids, one per target key (same order). No clock: the only writes are
the count and the session's version.

Returns a JSON object: family (HMGET replies), labels, sessions (flat [field, value, ...]
arrays), relations ([type, relatedIssueId] per existing relation), goal (flat array or false),
targets (ids) and refs (HMGET replies, same order), generation (string or false), counted (1 if
the use was counted, and then recorded when ARGV[2] names a version). Empty arrays may be encoded as {} (cjson cannot tell them apart).
]]
local expected, record, own_goal, project_id = ARGV[1], ARGV[2], ARGV[3] == '1', ARGV[4]
local n = {}
for i = 5, 10 do n[#n + 1] = tonumber(ARGV[i]) end
local s, r = tonumber(ARGV[11]), tonumber(ARGV[12])
local summary, refs_fields, target_ids = {}, {}, {}
for i = 13, 12 + s do summary[#summary + 1] = ARGV[i] end
for i = 13 + s, 12 + s + r do refs_fields[#refs_fields + 1] = ARGV[i] end
for i = 13 + s + r, #ARGV do target_ids[#target_ids + 1] = ARGV[i] end

local k = 4
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

local out = {goal = false, counted = 0}
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

local generation = redis.call('GET', KEYS[1])
out.generation = generation
if expected ~= '' and (generation or '') == expected and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'usageCount', 1)
  out.counted = 1
  if record ~= '' then
    redis.call('HSET', KEYS[3], 'versionId', record)
    redis.call('HINCRBY', KEYS[4], 'dispatched', 1)
  end
end
return cjson.encode(out)

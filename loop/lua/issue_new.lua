--[[
issue_new.lua: a new issue's whole transaction in ONE command: (for a fingerprint's first signal)
its group checked, the issue number drawn and every write of the transaction applied.

Replaces, when the transaction's writes are all scripts (no label, no parent, no delivery guard,
goal reading or recurrence: loop/store/issues.py, Issues.create_one), the INCR of the number (or,
for a signal, the WATCH + signal_open.lua round trip) and the MULTI/EXEC that queues those
scripts: the check and the writes are one atomic step, so nothing needs watching. Each part is one
of the scripts below, included as a function of its own KEYS and ARGV (loop/scripts.py,
``--! function``): what runs is exactly what the MULTI would have run. Every key shares the
namespace hash tag.

KEYS[1]      string  P:seq:issue              the issue number sequence
KEYS[2]      string  P:signal:group:<digest>  the fingerprint's group (only when ARGV[1] is "1")
KEYS[2+G..]  each part's KEYS, in part order (G = ARGV[1])

ARGV[1]    G: "1" when KEYS[2] is a group to check, else "0"
ARGV[2]    the group value the write expects: '' (no group yet); ignored when G is "0"
ARGV[3]    ID_WIDTH (an issue's offset in P:issues:ids is (number - 1) * ID_WIDTH)
ARGV[4]    P, the number of parts
ARGV[5..4+3P]   per part: its script name, its key count, its argument count
ARGV[5+3P..]    the parts' arguments, in part order

The number is drawn here, so the parts' arguments carry a placeholder where it goes: issue_create's
ARGV[2] (the number), ARGV[3] (the offset) and its row's ``number`` field, signal_stage's ARGV[2]
(the signal's score). No other part argument depends on it.

Returns {group value or nil, the number drawn} when it wrote, {group value, nil} when the group
names an issue (nothing written: the signal joins that issue, or the WATCH path decides).
]]
--! function issue_create
--! function signal_stage
--! function dispatch_enter
--! function stats_count
local run = {issue_create = issue_create, signal_stage = signal_stage,
             dispatch_enter = dispatch_enter, stats_count = stats_count}

local grouped, parts = ARGV[1] == '1', tonumber(ARGV[4])
for p = 0, parts - 1 do  -- before any write: a wrong name must not leave half a transaction
  if run[ARGV[5 + 3 * p]] == nil then
    return redis.error_reply('issue_new: unknown part ' .. tostring(ARGV[5 + 3 * p]))
  end
end
local current = false
if grouped then
  current = redis.call('GET', KEYS[2])
  if (current or '') ~= ARGV[2] then
    return {current, false}
  end
end
local number = redis.call('INCR', KEYS[1])
local key, arg = grouped and 3 or 2, 5 + 3 * parts
for p = 0, parts - 1 do
  local name = ARGV[5 + 3 * p]
  local nkeys, nargs = tonumber(ARGV[6 + 3 * p]), tonumber(ARGV[7 + 3 * p])
  local keys, args = {}, {}
  for i = 1, nkeys do keys[i] = KEYS[key + i - 1] end
  for i = 1, nargs do args[i] = ARGV[arg + i - 1] end
  key, arg = key + nkeys, arg + nargs
  if name == 'issue_create' then
    args[2], args[3] = number, (number - 1) * tonumber(ARGV[3])
    for i = 9, 8 + 2 * tonumber(args[8]), 2 do
      if args[i] == 'number' then args[i + 1] = number end
    end
  elseif name == 'signal_stage' then
    args[2] = number
  end
  run[name](keys, args)
end
return {current, number}

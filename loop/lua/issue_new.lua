--[[
issue_new.lua: a new issue's whole transaction in ONE command: the keys it depends on checked
(a fingerprint's group, a webhook delivery's guard), the issue number drawn and every write of the
transaction applied.

Replaces, when the transaction's writes are all scripts (no label, no parent, no goal reading nor
recurrence: loop/store/issues.py, Issues.create_one), the INCR of the number (or, for a signal,
the WATCH + GET of its guard and the WATCH + signal_open.lua round trip) and the MULTI/EXEC that
queues those scripts: the checks and the writes are one atomic step, so nothing needs watching.
Each part is one of the scripts below, included as a function of its own KEYS and ARGV
(loop/scripts.py, ``--! function``): what runs is exactly what the MULTI would have run. Every key
shares the namespace hash tag.

KEYS[1]         string  P:seq:issue   the issue number sequence
KEYS[2..1+E]    string  the E keys checked first (P:signal:group:<digest>, P:signals:done:...)
KEYS[2+E..]     each part's KEYS, in part order

ARGV[1]         E
ARGV[2..1+E]    the value each checked key must hold: '' = the key does not exist
ARGV[2+E]       ID_WIDTH (an issue's offset in P:issues:ids is (number - 1) * ID_WIDTH)
ARGV[3+E]       P, the number of parts
ARGV[4+E..3+E+3P]   per part: its script name, its key count, its argument count
ARGV[4+E+3P..]      the parts' arguments, in part order

The number is drawn here, so the parts' arguments carry a placeholder where it goes: issue_create's
ARGV[2] (the number), ARGV[3] (the offset) and its row's ``number`` field, signal_stage's ARGV[2]
(the signal's score). No other part argument depends on it.

Returns {1, the number drawn} when it wrote; {0, i, the value} when checked key i (1-based) holds
something else (nothing written: the signal joins that issue, or was recorded already).
]]
--! function issue_create
--! function signal_stage
--! function dispatch_enter
--! function stats_count
local run = {issue_create = issue_create, signal_stage = signal_stage,
             dispatch_enter = dispatch_enter, stats_count = stats_count}

local e = tonumber(ARGV[1])
local parts = tonumber(ARGV[3 + e])
for p = 0, parts - 1 do  -- before any write: a wrong name must not leave half a transaction
  if run[ARGV[4 + e + 3 * p]] == nil then
    return redis.error_reply('issue_new: unknown part ' .. tostring(ARGV[4 + e + 3 * p]))
  end
end
for i = 1, e do
  local value = redis.call('GET', KEYS[1 + i])
  if (value or '') ~= ARGV[1 + i] then
    return {0, i, value}
  end
end
local number = redis.call('INCR', KEYS[1])
local width = tonumber(ARGV[2 + e])
local key, arg = 2 + e, 4 + e + 3 * parts
for p = 0, parts - 1 do
  local name = ARGV[4 + e + 3 * p]
  local nkeys, nargs = tonumber(ARGV[5 + e + 3 * p]), tonumber(ARGV[6 + e + 3 * p])
  local keys, args = {}, {}
  for i = 1, nkeys do keys[i] = KEYS[key + i - 1] end
  for i = 1, nargs do args[i] = ARGV[arg + i - 1] end
  key, arg = key + nkeys, arg + nargs
  if name == 'issue_create' then
    args[2], args[3] = number, (number - 1) * width
    for i = 9, 8 + 2 * tonumber(args[8]), 2 do
      if args[i] == 'number' then args[i + 1] = number end
    end
  elseif name == 'signal_stage' then
    args[2] = number
  end
  run[name](keys, args)
end
return {1, number}

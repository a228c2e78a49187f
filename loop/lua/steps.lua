--[[
steps.lua: writes staged as a MULTI would queue them, run as ONE command: each step is one of the
scripts below, included as a function of its own KEYS and ARGV (loop/scripts.py, ``--! function``),
or one of the COMMANDS, whose first argument is its key. What runs is exactly what the MULTI would
have run, and as atomically; one EVALSHA costs the client far less than a MULTI/EXEC of several
commands (loop.scripts.run_staged). issue_update.lua runs its writes through it. Every key shares
the namespace hash tag.

KEYS[1..]       each step's KEYS, in step order

ARGV[1]         S, the number of steps
ARGV[2..1+3S]   per step: its script or command name, its key count, its argument count
ARGV[2+3S..]    the steps' arguments, in step order

Returns the number of steps run. An unknown step is refused before any write.
]]
--! function dispatch_enter
--! function stats_count
local run = {dispatch_enter = dispatch_enter, stats_count = stats_count}
local COMMANDS = {HSET = true, HDEL = true, HINCRBY = true, SETBIT = true, ZADD = true, ZREM = true,
                  ZREMRANGEBYRANK = true, SADD = true, SREM = true}

local steps = tonumber(ARGV[1])
for s = 0, steps - 1 do  -- before any write: a wrong name must not leave half a transaction
  local name = ARGV[2 + 3 * s]
  if run[name] == nil and (COMMANDS[name] == nil or tonumber(ARGV[3 + 3 * s]) ~= 1) then
    return redis.error_reply('steps: unknown step ' .. tostring(name))
  end
end
local key, arg = 1, 2 + 3 * steps
for s = 0, steps - 1 do
  local name = ARGV[2 + 3 * s]
  local nkeys, nargs = tonumber(ARGV[3 + 3 * s]), tonumber(ARGV[4 + 3 * s])
  if run[name] then
    local keys, args = {}, {}
    for i = 1, nkeys do keys[i] = KEYS[key + i - 1] end
    for i = 1, nargs do args[i] = ARGV[arg + i - 1] end
    run[name](keys, args)
  else  -- a command: straight from KEYS and ARGV, no tables to build (and collect)
    redis.call(name, KEYS[key], unpack(ARGV, arg, arg + nargs - 1))
  end
  key, arg = key + nkeys, arg + nargs
end
return steps

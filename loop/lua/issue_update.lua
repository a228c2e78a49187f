--[[
issue_update.lua: an issue write's whole transaction in ONE command, applied only if what it was
computed from is still what issue_fenced_read.lua read.

Replaces, when the write's transaction is made of the scripts and the single-key commands below
alone (loop/store/issues.py, Issues.update_one: no hook read under WATCH, no parent change), the
WATCH, the read and the MULTI/EXEC: the check of the reads and the writes are one atomic step.
A write computed from reads that changed meanwhile writes nothing and says so (the caller reads
again), as an EXEC fails when a watched key changed. Each step is one of the scripts below,
included as a function of its own KEYS and ARGV (loop/scripts.py, ``--! function``), or one of the
COMMANDS, whose first argument is its key: what runs is exactly what the MULTI would have run.
Every key shares the namespace hash tag.

KEYS[1..R]      the keys issue_fenced_read.lua read: the issue, its dispatch state, the session
                the claim token names, and the issues it blocks when the write resolves it (R = 3 or 4)
KEYS[R+1..]     each step's KEYS, in step order

ARGV[1]         R
ARGV[2]         the digest issue_fenced_read.lua returned for those keys (or
                loop.store.issues.read_digest of a predicted read: Issues.expect)
ARGV[3]         S, the number of steps
ARGV[4..3+3S]   per step: its script or command name, its key count, its argument count
ARGV[4+3S..]    the steps' arguments, in step order

Returns {1} when it wrote; when the reads changed (nothing written), {0} and what
issue_fenced_read.lua with 'digest' reads now: the caller stages the write again from it.
]]
--! function issue_fenced_read
--! function dispatch_enter
--! function stats_count
local run = {dispatch_enter = dispatch_enter, stats_count = stats_count}
local COMMANDS = {HSET = true, HDEL = true, HINCRBY = true, SETBIT = true, ZADD = true, ZREM = true,
                  ZREMRANGEBYRANK = true, SADD = true, SREM = true}

local r = tonumber(ARGV[1])
local steps = tonumber(ARGV[3])
for s = 0, steps - 1 do  -- before any write: a wrong name must not leave half a transaction
  local name = ARGV[4 + 3 * s]
  if run[name] == nil and (COMMANDS[name] == nil or tonumber(ARGV[5 + 3 * s]) ~= 1) then
    return redis.error_reply('issue_update: unknown step ' .. tostring(name))
  end
end
local read = {}
for i = 1, r do read[i] = KEYS[i] end
local now = issue_fenced_read(read, {'digest'})
if now[4] ~= ARGV[2] then
  return {0, now[1], now[2], now[3], now[4], now[5]}
end
local key, arg = r + 1, 4 + 3 * steps
for s = 0, steps - 1 do
  local name = ARGV[4 + 3 * s]
  local nkeys, nargs = tonumber(ARGV[5 + 3 * s]), tonumber(ARGV[6 + 3 * s])
  local keys, args = {}, {}
  for i = 1, nkeys do keys[i] = KEYS[key + i - 1] end
  for i = 1, nargs do args[i] = ARGV[arg + i - 1] end
  key, arg = key + nkeys, arg + nargs
  if run[name] then
    run[name](keys, args)
  else
    redis.call(name, keys[1], unpack(args))
  end
end
return {1}

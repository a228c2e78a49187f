--[[
issue_update.lua: an issue write's whole transaction in ONE command, applied only if what it was
computed from is still what issue_fenced_read.lua read.

Replaces, when the write's transaction is made of steps.lua's scripts and single-key commands alone
(loop/store/issues.py, Issues.update_one: no hook read under WATCH, no parent change), the
WATCH, the read and the MULTI/EXEC: the check of the reads and the writes are one atomic step.
A write computed from reads that changed meanwhile writes nothing and says so (the caller reads
again), as an EXEC fails when a watched key changed. The writes run as steps.lua runs them (included
as a function, loop/scripts.py ``--! function``): exactly what the MULTI would have run. Every key
shares the namespace hash tag.

KEYS[1..]       each step's KEYS, in step order (steps.lua's KEYS: it runs on this KEYS as is)
KEYS[#KEYS-R+1..#KEYS]  the keys issue_fenced_read.lua read: the issue, its dispatch state, the
                session the claim token names, and the issues it blocks when the write resolves it
                (R = 3 or 4)

ARGV[1..]       steps.lua's ARGV: S, per step its name, key count and argument count, then the steps'
                arguments (steps.lua runs on this ARGV as is: it reads no further than its S steps)
ARGV[#ARGV-1]   R
ARGV[#ARGV]     the digest issue_fenced_read.lua returned for those keys (or
                loop.store.one_command.read_digest of a read a claim predicted: Issues.expected)

Returns {1} when it wrote; when the reads changed (nothing written), {0} and what
issue_fenced_read.lua with 'digest' reads now: the caller stages the write again from it.
]]
--! function issue_fenced_read
--! function steps

-- The read keys and the digest come last, so the steps' KEYS and ARGV need no copy.
local r = tonumber(ARGV[#ARGV - 1])
local read = {}
for i = 1, r do read[i] = KEYS[#KEYS - r + i] end
local now = issue_fenced_read(read, {'digest'})
if now[4] ~= ARGV[#ARGV] then
  return {0, now[1], now[2], now[3], now[4], now[5]}
end
local ok = steps(KEYS, ARGV)
if type(ok) == 'table' and ok.err then
  return ok  -- an unknown step: refused before any write
end
return {1}

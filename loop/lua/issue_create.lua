--[[
issue_create.lua: a new issue's row and its indexes, in one command.

Queued inside the MULTI that creates the issue (loop/store/issues.py, Issues.stage_create), in
place of an HSET, a SETRANGE, B SETBITs, Z ZADDs, C HINCRBYs and the roots ZADD: one command for
the client to pack and for the transaction to queue. What it writes is what Issues._reindex
writes for a new live issue. Every key shares the namespace hash tag.

KEYS[1]              hash    P:issue:<id>                   the new issue's row
KEYS[2]              string  P:issues:ids                   fixed-width ids by number
KEYS[3]              zset    P:idx:issues:roots             root issues by latest activity
KEYS[4..3+B]         bitmap  P:bits:issues[:<field>:<value>]  the B bitmaps whose bit <number> it sets
KEYS[4+B..3+B+Z]     zset    P:idx:issues:<field>:<value>   the Z zsets it joins, scored by its number
KEYS[4+B+Z..]        hash    P:counts:project_<fields>      the C per-project counts it increments

ARGV[1]      the issue id
ARGV[2]      its number
ARGV[3]      its offset in P:issues:ids ((number - 1) * ID_WIDTH)
ARGV[4]      its updatedAt (ms): its score in the roots zset
ARGV[5]      its parent's id, or '' for a root (a child raises its parent's score, never adds it)
ARGV[6]      B
ARGV[7]      Z
ARGV[8]      n, the number of row fields that follow
ARGV[9..8+2n]        the row: field, value, ... (non-null fields only: a new hash has nothing to delete)
ARGV[9+2n..8+2n+C]   the field of each counts hash to increment by one, in KEYS order

Returns 1.
]]
local id, number, offset, updated, parent = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local b, z, n = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
redis.call('HSET', KEYS[1], unpack(ARGV, 9, 8 + 2 * n))
redis.call('SETRANGE', KEYS[2], offset, id)
for i = 4, 3 + b do
  redis.call('SETBIT', KEYS[i], number, 1)
end
for i = 4 + b, 3 + b + z do
  redis.call('ZADD', KEYS[i], number, id)
end
local field = 9 + 2 * n
for i = 4 + b + z, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[field], 1)
  field = field + 1
end
if parent == '' then
  redis.call('ZADD', KEYS[3], 'GT', updated, id)
else
  redis.call('ZADD', KEYS[3], 'XX', 'GT', updated, parent)
end
return 1

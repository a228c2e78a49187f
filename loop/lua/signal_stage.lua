--[[
signal_stage.lua: a new signal's row, its indexes and its filter-combination counts, in one command.

Queued inside the MULTI that writes the signal's issue (loop/store/signals.py,
Signals.stage_signal), in place of an HSET, 2 + F ZADDs and C HINCRBYs: one command for the
client to pack and for the transaction to queue. Every key shares the namespace hash tag.

KEYS[1]      hash  P:signal:<id>                      the new signal's row
KEYS[2]      zset  P:idx:signals                      every signal, scored by its issue's number
KEYS[3]      zset  P:retention:payloads               signal id -> createdAt (payload retention)
KEYS[4]      hash  P:counts:signals                   filter-value combination -> signals
KEYS[5..]    zset  P:idx:signals:<field>:<value>      the F filter indexes the signal belongs to

ARGV[1]      the signal id
ARGV[2]      its score: the issue's number
ARGV[3]      its createdAt (ms)
ARGV[4]      n, the number of row fields that follow
ARGV[5..4+2n]   the row: field, value, ... (non-null fields only: a new row has nothing to delete)
ARGV[5+2n..]    the P:counts:signals fields to increment by one (its 2- and 3-value combinations)

Returns the number of counts incremented.
]]
local id, score, created, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('HSET', KEYS[1], unpack(ARGV, 5, 4 + 2 * n))
redis.call('ZADD', KEYS[2], score, id)
redis.call('ZADD', KEYS[3], created, id)
for i = 5, #KEYS do
  redis.call('ZADD', KEYS[i], score, id)
end
local counted = 0
for i = 5 + 2 * n, #ARGV do
  redis.call('HINCRBY', KEYS[4], ARGV[i], 1)
  counted = counted + 1
end
return counted

--[[
signal_stage.lua: a new signal's row, its indexes, its filter-combination counts, for a
fingerprint's first signal its group and for a webhook delivery its guard, in one command.

Queued inside the MULTI that writes the signal's issue (loop/store/signals.py,
Signals.stage_signal), in place of an HSET, 2 + F ZADDs, C HINCRBYs and the group's and guard's SETs: one
command for the client to pack and for the transaction to queue. Every key shares the namespace
hash tag.

KEYS[1]        hash    P:signal:<id>                      the new signal's row
KEYS[2]        zset    P:idx:signals                      every signal, scored by its issue's number
KEYS[3]        zset    P:retention:payloads               signal id -> createdAt (payload retention)
KEYS[4]        hash    P:counts:signals                   filter-value combination -> signals
KEYS[5..4+F]   zset    P:idx:signals:<field>:<value>      the F filter indexes the signal belongs to
KEYS[5+F]      string  P:signal:group:<digest>            the group a new issue opens (only with ARGV[6+2n])
KEYS[5+F+G]    string  P:signals:done:<source>:<delivery>  the delivery's guard (only with ARGV[7+2n];
                                                           G = 1 when there is a group key, else 0)

ARGV[1]      the signal id
ARGV[2]      its score: the issue's number
ARGV[3]      its createdAt (ms)
ARGV[4]      n, the number of row fields that follow
ARGV[5..4+2n]   the row: field, value, ... (non-null fields only: a new row has nothing to delete)
ARGV[5+2n]      F
ARGV[6+2n]      the issue id the group (KEYS[5+F]) now names, or '' when there is no group to set
ARGV[7+2n]      the guard: '' none, '0' set without expiry, else set to the signal id with this TTL (s)
ARGV[8+2n..]    the P:counts:signals fields to increment by one (its 2- and 3-value combinations)

Returns the number of counts incremented.
]]
local id, score, created, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local f, group, guard = tonumber(ARGV[5 + 2 * n]), ARGV[6 + 2 * n], ARGV[7 + 2 * n]
redis.call('HSET', KEYS[1], unpack(ARGV, 5, 4 + 2 * n))
redis.call('ZADD', KEYS[2], score, id)
redis.call('ZADD', KEYS[3], created, id)
for i = 5, 4 + f do
  redis.call('ZADD', KEYS[i], score, id)
end
local counted = 0
for i = 8 + 2 * n, #ARGV do
  redis.call('HINCRBY', KEYS[4], ARGV[i], 1)
  counted = counted + 1
end
local g = 0
if group ~= '' then
  redis.call('SET', KEYS[5 + f], group)
  g = 1
end
if guard == '0' then
  redis.call('SET', KEYS[5 + f + g], id)
elseif guard ~= '' then
  redis.call('SET', KEYS[5 + f + g], id, 'EX', guard)
end
return counted

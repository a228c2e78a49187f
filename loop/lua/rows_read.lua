--[[
rows_read.lua: the same fields of several hashes in one command (a page of rows). Read only.

Replaces a pipeline of one HGETALL per row: a single reply that hiredis parses in C, so a page
of 50 costs one command's client overhead instead of 50 (docs/benchmarks.md, issue 12).

KEYS[1..n]  hash  P:<kind>:<id>   the rows, in page order (every key this script touches)
ARGV[1..f]  the field names to read, in order

Returns one HMGET reply per key, in KEYS order (nil for an absent field; every field nil when
the hash does not exist, e.g. deleted between the id lookup and this read).
]]
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HMGET', KEYS[i], unpack(ARGV))
end
return out

--[[
rows_read.lua: several hashes in one command (a page of rows). Read only.

Replaces a pipeline of one HGETALL per row: a single reply that hiredis parses in C, so a page
of 50 costs one command's client overhead instead of 50 (docs/benchmarks.md, issue 12). HGETALL,
not HMGET of every known field: a row holds only its non-null fields (~9 of an issue's 25), so
Redis scans each small hash once and the reply carries no nils (~1/3 less Redis CPU per page).

KEYS[1..n]  hash  P:<kind>:<id>   the rows, in page order (every key this script touches)

Returns one flat HGETALL reply ({field, value, ...}) per key, in KEYS order (empty when the hash
does not exist, e.g. deleted between the id lookup and this read).
]]
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('HGETALL', KEYS[i])
end
return out

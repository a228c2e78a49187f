--[[
rows_read.lua: several hashes in one command (a page of rows). Read only.

Replaces a pipeline of one HGETALL per row: a single reply that hiredis parses in C, so a page
of 50 costs one command's client overhead instead of 50 (docs/benchmarks.md, issue 12). HGETALL,
not HMGET of every known field: a row holds only its non-null fields (~9 of an issue's 25), so
Redis scans each small hash once and the reply carries no nils.

KEYS[1..n]  hash  P:<kind>:<id>   the rows, in page order (every key this script touches)

ARGV[1]     optional: "json" returns each row as one string, the JSON array of its HGETALL reply
            (cjson, in C): one object per row for the client to parse, which the client's memo of
            row content -> wire form (models.wire_fragments) looks up whole.

Returns one flat HGETALL reply ({field, value, ...}) per key, in KEYS order (empty when the hash
does not exist, e.g. deleted between the id lookup and this read); with "json", one string per
key ("{}" for a missing hash: cjson's encoding of an empty table).
]]
local json = ARGV[1] == 'json'
local out = {}
for i = 1, #KEYS do
  local flat = redis.call('HGETALL', KEYS[i])
  if json then
    out[i] = cjson.encode(flat)
  else
    out[i] = flat
  end
end
return out

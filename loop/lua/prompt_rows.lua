--[[
prompt_rows.lua: read many hashes in one command and return them as one JSON string.

A prompt's context needs a few dozen small hashes (siblings or children, labels, relations,
goals). Fetched as a pipeline, each read costs the client a command to pack and a reply to
parse; here the server collects them and the client parses one string (orjson). Read-only.

KEYS[i]  hash  a row hash (P:issue:<id>, P:label:<id>, P:relation:<id>, P:goal:<id>, ...);
               every key shares the namespace hash tag (one Redis Cluster slot)

ARGV[1]  n: the first n keys are read with HMGET of the fields ARGV[2..], the others with HGETALL
ARGV[2..] field names for those n keys (no clock: nothing is written)

Returns: a JSON array with one element per key, in KEYS order: for the first n keys the HMGET
values in ARGV order (false where absent; all false when the hash does not exist), for the
others the hash as a flat array [field1, value1, ...] (empty, encoded [] or {}, when missing).
]]
local n = tonumber(ARGV[1])
local fields = {}
for i = 2, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local out = {}
for i, key in ipairs(KEYS) do
  if i <= n then
    out[i] = redis.call('HMGET', key, unpack(fields))
  else
    out[i] = redis.call('HGETALL', key)
  end
end
if #out == 0 then
  return '[]'
end
return cjson.encode(out)

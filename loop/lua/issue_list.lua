--[[
issue_list.lua: one page of live issues matching a filter, in creation (number) order, and the
exact total.

Low-cardinality fields (status, type, priority) and liveness are bitmaps with bit <number>
set; project, parent and label are zsets scored by number. Within a field the values are
OR-ed (BITOP OR), across fields AND-ed. With bitmaps only, the total is a BITCOUNT and the page
is found by skipping whole blocks with BITCOUNT, bisecting inside the block, then reading the
bits from there; numbers become ids through the fixed-width id string. With zsets, whichever
is smaller is walked in order: the smallest zset, each member checked against the bitmap (GETBIT)
and the other zsets (ZSCORE), or the bitmap's set bits, each id checked against every zset. Every
key shares the namespace hash tag (one Redis Cluster slot). With zsets only (no group), any zsets
with a shared member space work: signal filters (P:idx:signals:<field>:<value>) use this walk too.

KEYS[1]  string  P:issues:ids              issue id by number: ARGV[3] bytes at (number-1)*ARGV[3]
KEYS[2]  string  P:tmp:<token>:a           scratch bitmap (written by BITOP, deleted before returning)
KEYS[3]  string  P:tmp:<token>:b           scratch bitmap (same)
KEYS[4..]        the filter terms, in the order ARGV describes:
                 g groups of bitmaps (string; P:bits:issues, P:bits:issues:<field>:<value>),
                 then z zsets (P:idx:issues:<project|parent|label>:<id>, score = number),
                 then, when c > 0, the counts hash: P:counts:project_status, project_type or
                 project_status_type ("<projectId>|<status>|<type>" -> count), or P:counts:signals,
                 then, when h > 0, h hashes P:issue:<id>: the hint, the rows the caller expects
                 the page to hold (read, and only read, when the page's ids are exactly these)

ARGV[1]  offset (>= 0)
ARGV[2]  limit (>= 1)
ARGV[3]  width of an id in KEYS[1]
ARGV[4]  block size in bytes for skipping to the offset
ARGV[5]  g: number of bitmap groups
ARGV[5 + i]  number of keys in group i (i = 1..g)
ARGV[6 + g]  z: number of zsets
ARGV[7 + g]  c: number of count fields; ARGV[7 + g + j] field j of the counts hash. When the
         filter is exactly a project and statuses, types or both, the caller passes
         "<projectId>|<status>" per status (or per type, or "<projectId>|<status>|<type>" per pair;
         for signals one combination field): the total is their sum and the zset walk stops once
         the page is full.
ARGV[8 + g + c]  optional h: number of hint keys (absent: 0)
ARGV[9 + g + c]  with h > 0: the row key prefix (P:issue:), so hint key j is prefix .. id j
At least one group or one zset.

Returns {total, r, id1, id2, ..., row1, ..., row_r}: the exact number of matches, how many rows
follow the ids (0, or the page's size when the hint matched the page), the page's ids in order,
then each row's HGETALL reply as one JSON string (cjson; as rows_read.lua "json"). The hint saves
the caller the round trip of reading the rows after the ids when a page has not changed members.
Cost: bitmaps only, O(N/8) bytes of BITOP/BITCOUNT for N issues (memory speed) plus the page;
with zsets, O(min(M, B)) for the smallest zset's M members and the bitmap's B matches (up to the
page only, when the counts give the total; with zsets only, the count is one ZINTERCARD, O(M) in C,
and the walk goes up to the page only).
]]
local offset, limit, width, block = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local g = tonumber(ARGV[5])
local z = tonumber(ARGV[6 + g])
local c = tonumber(ARGV[7 + g])
local pos = 4

-- The result bitmap R: OR within a group, AND across groups (nil when there is no group).
local R = nil
for i = 1, g do
  local size = tonumber(ARGV[5 + i])
  local key
  if size == 1 then
    key = KEYS[pos]
  else
    key = R and KEYS[3] or KEYS[2]
    redis.call('BITOP', 'OR', key, unpack(KEYS, pos, pos + size - 1))
  end
  if R then
    redis.call('BITOP', 'AND', KEYS[2], R, key)
    R = KEYS[2]
  else
    R = key
  end
  pos = pos + size
end

-- Calls fn(number) for each set bit of R from byte `from` on, in order, until fn returns true.
local function each_bit(from, fn)
  local len = redis.call('STRLEN', R)
  local at = from
  while at < len do
    local chunk = redis.call('GETRANGE', R, at, at + 255)
    for j = 1, #chunk do
      local byte = string.byte(chunk, j)
      if byte ~= 0 then
        for bitpos = 0, 7 do
          if bit.band(byte, bit.rshift(128, bitpos)) ~= 0 and fn((at + j - 1) * 8 + bitpos) then
            return
          end
        end
      end
    end
    at = at + 256
  end
end

local function id_of(n)
  return redis.call('GETRANGE', KEYS[1], (n - 1) * width, n * width - 1)
end

local out = {}
local total = 0

if z > 0 then
  -- Walk the smallest zset; keep the members in R and in every other zset.
  local zsets, small, small_n = {}, nil, nil
  for i = pos, pos + z - 1 do
    local n = redis.call('ZCARD', KEYS[i])
    if not small or n < small_n then
      small, small_n = KEYS[i], n
    end
    zsets[#zsets + 1] = KEYS[i]
  end
  local known = nil
  if c > 0 then
    known = 0
    for j = 1, c do
      known = known + tonumber(redis.call('HGET', KEYS[pos + z], ARGV[7 + g + j]) or '0')
    end
  end
  if not known and not R and z > 1 then
    -- Zsets only (project + label, ...): no counter, but ZINTERCARD (Redis 7) counts the
    -- intersection in C, ~10x faster than this script's walk; the walk then stops at the page's
    -- end. Still O(smallest zset) for the count. Older servers answer an error: walk instead.
    local n = redis.pcall('ZINTERCARD', z, unpack(KEYS, pos, pos + z - 1))
    if type(n) == 'number' then known = n end
  end
  if R and not known and redis.call('BITCOUNT', R) < small_n then
    -- Fewer issues match the bitmaps than the smallest zset holds: walk the bitmap instead.
    each_bit(0, function(n)
      local id = id_of(n)
      for _, zkey in ipairs(zsets) do
        if not redis.call('ZSCORE', zkey, id) then
          return false
        end
      end
      if total >= offset and #out < limit then
        out[#out + 1] = id
      end
      total = total + 1
      return false
    end)
    small_n = 0  -- done: skip the zset walk
  end
  -- With a known total the walk may stop early: read small batches first, growing.
  local start, batch = 0, known and math.max(64, math.min(1000, 2 * (offset + limit))) or 1000
  while start < small_n and not (known and #out >= limit) do
    local page = redis.call('ZRANGE', small, start, start + batch - 1, 'WITHSCORES')
    for j = 1, #page, 2 do
      if known and #out >= limit then
        break
      end
      local id = page[j]
      local ok = (not R) or redis.call('GETBIT', R, page[j + 1]) == 1
      for _, other in ipairs(zsets) do
        if ok and other ~= small then
          ok = redis.call('ZSCORE', other, id) ~= false
        end
      end
      if ok then
        if total >= offset and #out < limit then
          out[#out + 1] = id
        end
        total = total + 1
      end
    end
    start = start + batch
    batch = math.min(1000, batch * 2)
  end
  if known then
    total = known
  end
else
  total = redis.call('BITCOUNT', R)
  if offset < total then
    local len = redis.call('STRLEN', R)
    -- Skip whole blocks, then bisect for the byte holding the (offset+1)-th set bit.
    local lo, seen = 0, 0
    while true do
      local n = redis.call('BITCOUNT', R, lo, lo + block - 1)
      if seen + n > offset then
        break
      end
      seen, lo = seen + n, lo + block
    end
    local a, b = lo, math.min(lo + block, len) - 1
    while a < b do
      local mid = math.floor((a + b) / 2)
      if seen + redis.call('BITCOUNT', R, lo, mid) > offset then
        b = mid
      else
        a = mid + 1
      end
    end
    if a > lo then
      seen = seen + redis.call('BITCOUNT', R, lo, a - 1)
    end
    -- Read bits from byte a on: skip (offset - seen) more set bits, then collect.
    local numbers = {}
    each_bit(a, function(n)
      if seen < offset then
        seen = seen + 1
        return false
      end
      numbers[#numbers + 1] = n
      return #numbers >= limit
    end)
    -- The page's ids: one GETRANGE of the span they lie in when it is dense (a page of live
    -- issues usually is), instead of one per id.
    local count = #numbers
    if count > 0 then
      local first, last = numbers[1], numbers[count]
      if last - first < 4 * count then
        local span = redis.call('GETRANGE', KEYS[1], (first - 1) * width, last * width - 1)
        for j = 1, count do
          local at = (numbers[j] - first) * width
          out[j] = string.sub(span, at + 1, at + width)
        end
      else
        for j = 1, count do
          out[j] = id_of(numbers[j])
        end
      end
    end
  end
end

-- The hint: when the page is exactly the hinted rows, read them in this same call.
local h = tonumber(ARGV[8 + g + c] or '0')
local rows = 0
if h > 0 and h == #out then
  local prefix, first = ARGV[9 + g + c], pos + z + (c > 0 and 1 or 0)
  local same = true
  for j = 1, h do
    if KEYS[first + j - 1] ~= prefix .. out[j] then
      same = false
      break
    end
  end
  if same then
    for j = 1, h do
      out[h + j] = cjson.encode(redis.call('HGETALL', KEYS[first + j - 1]))
    end
    rows = h
  end
end

redis.call('DEL', KEYS[2], KEYS[3])
table.insert(out, 1, rows)
table.insert(out, 1, total)
return out

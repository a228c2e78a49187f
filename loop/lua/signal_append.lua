--[[
signal_append.lua: a grouped signal joins its group's open issue, atomically, in one command.

Run without WATCH (loop/store/signals.py, Signals._append) when the write needs nothing Python
must decide under WATCH: no delivery guard, no goal reading, and a severity that does not raise
the issue's priority (so the issue hooks stage nothing: dispatch reacts to priority, not to these
fields). Otherwise, or when the group no longer names ARGV[1], or the issue is not open, it writes
nothing and returns {0}: the caller takes the WATCH/MULTI path (Signals._join), which handles
every case. Writing in one script instead of WATCH, read, MULTI/EXEC means concurrent signals of
one group never fail each other's EXEC (two API processes on one group did, ~0.5 retries each).

What it writes is what the WATCH path writes for such a signal: the issue's signalCount + 1,
lastSignalAt (the later of the two), signalRecent (the new entry first, then the older entries
that are objects, GROUP_RECENT_SIGNALS at most, copied verbatim but for surrounding blanks), updatedAt, completedAt removed
(an open issue has none), its roots-zset activity; and the signal as signal_stage.lua writes it,
scored by the issue's number. Every key shares the namespace hash tag.

KEYS[1]      string  P:signal:group:<digest>            the issue id the fingerprint's group names
KEYS[2]      hash    P:issue:<id>                       the group's issue (the caller's hint)
KEYS[3]      zset    P:idx:issues:roots                 root issues by latest activity
KEYS[4]      hash    P:signal:<id>                      the new signal's row
KEYS[5]      zset    P:idx:signals                      every signal, scored by its issue's number
KEYS[6]      zset    P:retention:payloads               signal id -> createdAt (payload retention)
KEYS[7]      hash    P:counts:signals                   filter-value combination -> signals
KEYS[8..]    zset    P:idx:signals:<field>:<value>      the filter indexes the signal belongs to

ARGV[1]      the issue id the group must name (KEYS[2]'s)
ARGV[2]      the write's time (ms): the issue's updatedAt and roots score
ARGV[3]      the signal's priority (from its severity): the issue's must be set and at most it
ARGV[4]      GROUP_RECENT_SIGNALS
ARGV[5]      the new signalRecent entry (a JSON object)
ARGV[6]      the signal id
ARGV[7]      its createdAt (ms)
ARGV[8]      r, the number of resolved statuses that follow (an issue in one is not open)
ARGV[9..8+r]         the resolved statuses
ARGV[9+r]            n, the number of signal row fields that follow
ARGV[10+r..9+r+2n]   the signal row: field, value, ... (non-null fields only)
ARGV[10+r+2n..]      the P:counts:signals fields to increment by one

Returns {0} (nothing written) or {1, the issue's HGETALL after the write as a flat list}.
]]
local issue_id, now, raised, keep = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('GET', KEYS[1]) ~= issue_id then
  return {0}
end
local f = redis.call('HMGET', KEYS[2], 'number', 'status', 'deletedAt', 'priority', 'signalCount',
  'lastSignalAt', 'signalRecent', 'parentId', 'completedAt')
if not f[1] or f[3] then
  return {0}
end
local r = tonumber(ARGV[8])
for i = 9, 8 + r do
  if f[2] == ARGV[i] then
    return {0}
  end
end
local priority = tonumber(f[4]) or 0
if priority == 0 or raised < priority then
  return {0}
end

-- The top-level elements of the stored signalRecent (a JSON array, or anything else: none).
local old, kept = f[7], {}
if old and string.sub(old, 1, 1) == '[' then
  local depth, start, i, instring = 0, 2, 2, false
  while #kept < keep - 1 do
    local at = instring and string.find(old, '["\\]', i) or string.find(old, '[%[%]{}",\\]', i)
    if not at then break end
    local c = string.sub(old, at, at)
    if instring then
      if c == '\\' then at = at + 1 else instring = false end
    elseif c == '"' then
      instring = true
    elseif c == '[' or c == '{' then
      depth = depth + 1
    elseif (c == ']' or c == '}') and depth > 0 then
      depth = depth - 1
    elseif depth == 0 and (c == ',' or c == ']') then
      local item = string.match(string.sub(old, start, at - 1), '^%s*(.-)%s*$')
      if string.sub(item, 1, 1) == '{' then kept[#kept + 1] = item end
      if c == ']' then break end
      start = at + 1
    end
    i = at + 1
  end
end
table.insert(kept, 1, ARGV[5])

local count = tonumber(f[5]) or 0
if count == 0 then count = 1 end
local last = ARGV[7]
if f[6] and tonumber(f[6]) > tonumber(last) then last = f[6] end
redis.call('HSET', KEYS[2], 'signalCount', count + 1, 'lastSignalAt', last,
  'signalRecent', '[' .. table.concat(kept, ',') .. ']', 'updatedAt', now)
if f[9] then
  redis.call('HDEL', KEYS[2], 'completedAt')
end
if f[8] then
  redis.call('ZADD', KEYS[3], 'XX', 'GT', now, f[8])
else
  redis.call('ZADD', KEYS[3], 'GT', now, issue_id)
end

local sid, created, n = ARGV[6], ARGV[7], tonumber(ARGV[9 + r])
local score = f[1]
redis.call('HSET', KEYS[4], unpack(ARGV, 10 + r, 9 + r + 2 * n))
redis.call('ZADD', KEYS[5], score, sid)
redis.call('ZADD', KEYS[6], created, sid)
for i = 8, #KEYS do
  redis.call('ZADD', KEYS[i], score, sid)
end
for i = 10 + r + 2 * n, #ARGV do
  redis.call('HINCRBY', KEYS[7], ARGV[i], 1)
end
return {1, redis.call('HGETALL', KEYS[2])}

--[[
signal_open.lua: check a fingerprint's group and draw the new issue's number, in one command.

Sent with the WATCH of KEYS[1] (loop/store/signals.py, Signals._open; loop.scripts.watch_eval), in place of a GET and an
INCR (one round trip instead of two). The number is drawn only when the group still names what
the write was planned on: a signal that must join an issue instead draws none. Every key shares
the namespace hash tag (one slot).

KEYS[1]  string  P:signal:group:<digest>  the issue id the fingerprint's group names
KEYS[2]  string  P:seq:issue              the issue number sequence

ARGV[1]  the group value the write expects ("" = no group yet, else the closed previous issue)
ARGV[2]  "1" to draw a number, "0" when this write already drew one (a retried transaction)

Returns {group value or nil, the number drawn or nil}.
]]
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] or ARGV[2] ~= '1' then
  return {current, false}
end
return {current, redis.call('INCR', KEYS[2])}

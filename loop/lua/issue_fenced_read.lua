--[[
issue_fenced_read.lua: an issue, the session its dispatch state names, and the session a claim
token names, in one command. Read only.

A fenced write (a PATCH with X-Loop-Claim-Token, Issues.update_if's ``session``) used to WATCH and
read these one by one: 6 round trips before its MULTI. Sent with the WATCH of the three keys
(loop.scripts.watch_eval: both in one round trip), so a change to any of them after this read
fails the EXEC.

KEYS[1]  hash  P:issue:<id>                 the issue
KEYS[2]  hash  P:dispatch:issue:<id>        its dispatch state (field session: the active session)
KEYS[3]  hash  P:session:<sessionId>        the session the claim token names (may not exist)
(no ARGV: nothing here depends on the clock)

Returns {<KEYS[1] field/value pairs>, <the session KEYS[2] names, or nil>, <KEYS[3] field/value pairs>}
]]
return {redis.call('HGETALL', KEYS[1]), redis.call('HGET', KEYS[2], 'session'), redis.call('HGETALL', KEYS[3])}

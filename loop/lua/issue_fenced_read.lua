--[[
issue_fenced_read.lua: an issue, the session its dispatch state names, and the session a claim
token names, in one command. Read only.

A fenced write (a PATCH with X-Loop-Claim-Token, Issues.update_if's ``session``) used to WATCH and
read these one by one: 6 round trips before its MULTI. Sent with the WATCH of the three keys
(loop.scripts.watch_eval: both in one round trip), so a change to any of them after this read
fails the EXEC. issue_update.lua includes it and runs it with ARGV[1] = 'digest': it writes only if
the digest is the one the write was staged from.

KEYS[1]  hash  P:issue:<id>                 the issue
KEYS[2]  hash  P:dispatch:issue:<id>        its dispatch state (field session: the active session)
KEYS[3]  hash  P:session:<sessionId>        the session the claim token names (may not exist)
KEYS[4]  hash  P:dispatch:blocking:<id>     the issues it blocks (only with 'digest'; optional:
                                            a write that resolves the issue reads them)
ARGV[1]  'digest', or absent               whether to add the digest of what was read
(nothing here depends on the clock)

Returns {<KEYS[1] field/value pairs>, <the session KEYS[2] names, or nil>, <KEYS[3] field/value pairs>}
and with 'digest' a fourth, the SHA-1 of cmsgpack.pack of what was read: KEYS[1]'s HGETALL, the named
session (false when unset), KEYS[3]'s HGETALL (and with KEYS[4], its HKEYS); and a fifth, those HKEYS
({} without KEYS[4])
(loop.store.one_command.read_digest computes the same from a predicted read; a large hash's order may
change without its content, on a rehash: then a write computed from it is staged again).
]]
local issue = redis.call('HGETALL', KEYS[1])
local named = redis.call('HGET', KEYS[2], 'session')
local held = redis.call('HGETALL', KEYS[3])
if ARGV[1] ~= 'digest' then
  return {issue, named, held}
end
-- MessagePack (C, one buffer) delimits every string by its length, so no two reads give one text.
if KEYS[4] then
  local blocking = redis.call('HKEYS', KEYS[4])
  return {issue, named, held, redis.sha1hex(cmsgpack.pack(issue, named, held, blocking)), blocking}
end
return {issue, named, held, redis.sha1hex(cmsgpack.pack(issue, named, held)), {}}

--[[
webhook_accept.lua: claim a webhook delivery's dedup markers for the job queued with it, or undo.

Runs as the LAST command of the MULTI/EXEC in which RQ queued the normalization job
(HSET rq:job:<id>, RPUSH rq:queue:<name>, SADD rq:queues; see loop.signals.intake), so the
markers and the job appear together or not at all, in one round trip. A delivery is a duplicate
when its delivery identity OR its exact signed body was accepted within the window: GitHub does
not sign X-GitHub-Delivery (nor Sentry its resource header), so a captured delivery replayed with
a fresh id must not become a new signal.
- neither marker exists: set both to this job id (with the window as TTL); the job stays queued;
- the identity marker already names this job (the same transaction applied twice by a client
  retry): drop the second copy of the id from the queue, keep the job;
- otherwise either marker names another job (a duplicate delivery): remove the job just queued,
  so the duplicate leaves nothing behind (EXEC is atomic: no worker ever sees it).
No clock involved (the window is the markers' TTL). The markers carry the namespace hash tag,
the RQ keys do not: RQ itself needs a non-cluster Redis.

KEYS[1]  string  P:webhook:<provider>:<digest>       identity dedup marker -> job id (TTL)
KEYS[2]  list    rq:queue:<name>                     the RQ queue the job id was just RPUSHed to
KEYS[3]  hash    rq:job:<job id>                     the RQ job hash just written
KEYS[4]  string  P:webhook-body:<provider>:<digest>  body dedup marker (SHA-256 of the raw body) -> job id (TTL)

ARGV[1]  job id
ARGV[2]  markers' TTL in seconds (LOOP_WEBHOOK_DEDUP_SECONDS)

Returns 1 when the job is queued for this delivery, 0 for a duplicate.
]]
local current = redis.call('GET', KEYS[1])
if not current and redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  redis.call('SET', KEYS[4], ARGV[1], 'EX', ARGV[2])
  return 1
end
-- The id was pushed at the tail just now: remove that copy (scan from the tail).
redis.call('LREM', KEYS[2], -1, ARGV[1])
if current == ARGV[1] then
  return 1
end
redis.call('DEL', KEYS[3])
return 0

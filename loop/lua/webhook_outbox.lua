--[[
webhook_outbox.lua: accept a webhook delivery into the namespace's outbox (RQ on another Redis).

Used instead of webhook_accept.lua when RQ's Redis is not the data Redis (LOOP_QUEUE_URL: a
cluster, or a separate queue server), where no transaction spans both. This first step records
the accepted delivery in the namespace's slot; loop.signals.intake then enqueues the RQ job with
the same id on RQ's Redis and clears the entry; workers/outbox.py enqueues any entry whose job
is missing (a crash between the two steps). Dedup is the same as webhook_accept.lua's: a
delivery is a duplicate when its identity OR its exact signed body was accepted in the window.
- neither marker exists: set both to this job id (TTL = the window), store the job's spec in
  the outbox and index it by acceptance time; returns 1;
- the identity marker already names this job id (a client retry of this same call): returns 1
  and changes nothing;
- otherwise (a duplicate): returns 0 and changes nothing.

KEYS[1]  string  P:webhook:<provider>:<digest>       identity dedup marker -> job id (TTL)
KEYS[2]  string  P:webhook-body:<provider>:<digest>  body dedup marker -> job id (TTL)
KEYS[3]  hash    P:webhook-outbox                    job id -> the job's spec (JSON)
KEYS[4]  zset    P:webhook-outbox:due                job id, score = accepted at (ms)

ARGV[1]  job id
ARGV[2]  markers' TTL in seconds (LOOP_WEBHOOK_DEDUP_SECONDS)
ARGV[3]  the job's spec (JSON)
ARGV[4]  now (epoch ms, from the caller's clock)
]]
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  return 1
end
if current or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return 1

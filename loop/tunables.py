"""Every fixed operational bound in one place: limits, batches, intervals, retries, timeouts, locks.

Each constant says what it bounds and why it has its value. The modules that use one import it
from here (several re-export it under their old name). What stays elsewhere, and why:

* ``loop/settings.py``: what an operator sets from the environment (``LOOP_*``), with defaults.
* ``workers/recovery.py``: the worker's recovery tunables, read from ``LOOP_WORKER_*`` at start.
* ``loop/keys.py``: key names and the id width the key layout depends on.
* Wire-contract limits (input sizes such as ``MAX_TITLE``, ``MAX_OFFSET``, the payload and piece
  limits) and domain rules (scoring weights, prompt review thresholds) stay beside the schema or
  rule they are part of: changing them changes the contract, not the tuning.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- transactions, locks
#: How many times a WATCH/MULTI transaction is retried on contention before giving up (409).
MAX_TX_RETRIES = 50
#: How long a stored Idempotency-Key response is replayed.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
#: How long an in-flight Idempotency-Key marker lives if its request died: longer than any request.
IDEMPOTENCY_LOCK_SECONDS = 60
#: Lock held while a prompt review files its improvement task: far longer than the filing takes,
#: short enough that a crashed filer frees it at once for the next review.
REVIEW_IMPROVEMENT_LOCK_MS = 10_000

# ----------------------------------------------------------------------------- dispatch
#: Candidates passed per claim-script call: a few more than the claims other processes make
#: between two of ours.
CLAIM_CANDIDATES = 8
#: A remembered queue head shorter than this asks the script for a fresh one with the claim.
CLAIM_REFILL_BELOW = CLAIM_CANDIDATES // 2
#: Candidates of every retry: more than the claims others make while we get back to Redis.
CLAIM_MAX_CANDIDATES = 48
#: Issues this process last put into a ready set (e.g. a re-open), passed as extra candidates of
#: its next claim: a re-opened issue usually outranks the remembered head.
CLAIM_ENTERED_HINTS = 4
#: Claims of this process whose expected fenced-write read is remembered (Issues.expected; ~1.5 KB
#: each): enough for every claim a process holds at once, at any concurrency it serves.
EXPECTED_READS = 1024
#: First backoff (seconds) between lost claim attempts; doubled per attempt, jittered.
CLAIM_BACKOFF_UNIT = 0.001
#: Cap of that backoff: a retrying claim never waits longer than this between attempts.
CLAIM_MAX_BACKOFF = 0.1
#: Script calls before giving up under extreme contention (each losing call still lets another win).
CLAIM_MAX_ATTEMPTS = 200
#: Expired leases handled per sweep call (the worker's periodic sweep loops over batches).
SWEEP_BATCH = 100
#: Expired leases a claim sweeps itself before claiming: a handful, so a claim never pays for a
#: backlog of them (the worker's periodic sweep, workers/leases.py, takes the rest in batches).
CLAIM_SWEEP = 4
#: Scheduled issues (``notBefore``) moved into the ready sets per script call: a claim moves at
#: most one batch (it only pays for the head of a crowd falling due at once); the
#: worker's 1 s scheduler tick (workers/leases.py) loops over batches for the rest. 50 keeps the
#: worst call well under the 5 ms target (~0.8 ms typical for 50; docs/benchmarks.md).
SCHEDULE_BATCH = 50
#: How often (seconds) a worker moves due scheduled issues into the ready sets: a due issue is
#: claimable within about this long even when nobody claims (a claim moves it at once).
SCHEDULE_SWEEP_SECONDS = 1.0
#: Batches one scheduler tick moves at most (SCHEDULE_BATCH each); the next tick takes the rest.
SCHEDULE_MAX_BATCHES = 400
#: How often (seconds) a worker sweeps expired leases; readiness calls it overdue after
#: HEALTH_SWEEP_OVERDUE_SECONDS.
LEASE_SWEEP_SECONDS = 15.0
#: Most issues a new blocking relation's cycle check visits (one round trip per level of the
#: blocking graph); a relation whose check would visit more is refused (docs/dispatch.md).
CYCLE_CHECK_LIMIT = 1000

# ----------------------------------------------------------------------------- reads
#: Issue bitmaps are skipped through in blocks of this many bytes (8x as many issues) when a
#: list starts at an offset: one BITCOUNT per block, then a bisection inside the block.
LIST_BLOCK_BYTES = 1024
#: Raw timestamps whose ISO-8601 form a process remembers (``models._iso_of``, a memo of a pure
#: function): ~10 MB at most; a page's rows share a few thousand distinct timestamps.
ISO_MEMO_MAX = 65_536
#: Distinct ``GET /api/issues`` queries whose last page of ids a process keeps as the next read's
#: hint (``IssuePages.list_wire``: a hint of which rows to read with the ids, checked by the script).
LIST_HINTS_MAX = 256
#: Rows whose encoded wire form (and, for the dispatch queue, decoded row) a process remembers,
#: keyed by their whole raw content (``models.wire_entries``, a memo of a pure function: never
#: stale): ~1.5 KB a row (+2 KB decoded) with a 400-character description, so ~35 MB at most per
#: process; 10,000 rows is 200 pages of 50.
WIRE_MEMO_MAX = 10_000
#: An issue's detail and each dashboard activity chain list at most this many children (the most
#: recent, in creation order) plus ``childrenTotal``: one request must not load them all.
CHILDREN_LIMIT = 50
#: At most this many siblings (or children) in a prompt context: the most recent, creation order.
FAMILY_LIMIT = 50
#: At most this many earlier agent sessions in a prompt context: the most recent (plus a total).
SESSION_LIMIT = 10
#: Feedback texts a prompt improvement task quotes: enough to show the pattern, bounded in size.
FEEDBACK_QUOTED = 8
#: Compiled prompt versions kept per process (versions are immutable, so entries never go stale).
PROMPT_CACHE_LIMIT = 1024
#: Compiled template sources kept per process (cleared when full: sources are few, compiling is cheap).
TEMPLATE_CACHE_LIMIT = 512

# ----------------------------------------------------------------------------- signals (webhooks)
#: Successful normalization results (``{"signalId", "issueId"}``) are kept this long: small, and
#: the signal itself is the durable record.
SIGNAL_RESULT_TTL = 24 * 3600
#: A normalization job is milliseconds of work; anything running this long (seconds) is stuck.
SIGNAL_JOB_TIMEOUT = 120

# ----------------------------------------------------------------------------- retention, repair
#: Most rows of each kind one retention purge removes (workers/retention.py): a run costs at
#: most this much whatever the backlog; the next run takes the rest.
RETENTION_BATCH = 200
#: How often (seconds) a worker purges (each run removes at most RETENTION_BATCH rows of each kind).
RETENTION_SWEEP_SECONDS = 300.0
#: Keys per SCAN step and rows per pipeline when ``loop admin`` recounts indexes: large enough to
#: be quick offline, small enough not to block Redis for long.
RECOUNT_BATCH = 1000

# ----------------------------------------------------------------------------- Redis failures
# (loop/redis_errors.py, loop/health.py; docs/operations.md "Health and Redis errors")
#: Socket timeout of every command: a request behind a silent (paused, partitioned) Redis answers
#: 503 after about this long. Timeouts are never retried, so this bounds the wait.
REDIS_TIMEOUT_SECONDS = 5.0
#: How long a dropped connection is retried (reconnects with backoff) before the request fails.
REDIS_RETRY_SECONDS = 2.0
#: ``Retry-After`` of a 503 caused by Redis.
REDIS_RETRY_AFTER_SECONDS = 5
#: TTL of the write probe ``GET /health`` makes (``P:health:probe``).
HEALTH_PROBE_TTL_MS = 60_000
#: Readiness: the periodic lease sweep is overdue when its last run is older than this.
HEALTH_SWEEP_OVERDUE_SECONDS = 60
#: Readiness: the oldest queued webhook job may wait this long.
HEALTH_QUEUE_AGE_SECONDS = 300
#: Readiness: Redis memory use above this fraction of ``maxmemory`` is a problem.
HEALTH_MEMORY_RATIO = 0.9
#: Recommended ``hash-max-listpack-value`` (``hash-max-ziplist-value`` on 6.x): values are stored
#: whole, so an issue hash keeps Redis's compact encoding only while each value fits; the start-up
#: check warns below it (docs/operations.md).
REDIS_HASH_VALUE_BYTES = 1024

# Signal grouping and goal readings (loop/store/signals.py, loop/store/goals.py; docs/signals.md)
#: Recent signals a grouped triage issue keeps (``signalRecent``) for its prompt: the newest first.
GROUP_RECENT_SIGNALS = 3
#: Bytes of one recent signal's payload kept whole in ``signalRecent``; a larger one is kept as an
#: excerpt of its JSON (the signal itself keeps it all).
GROUP_RECENT_PAYLOAD_BYTES = 2000
#: Readings kept per goal (``P:goal:<id>:readings``); older ones live on as daily count/sum.
GOAL_READINGS_KEPT = 1000
#: Readings a goal row carries as its ``trend`` (newest first): the goal partial shows them.
GOAL_TREND_READINGS = 5
#: Attempts of a grouped signal write when its group moved under it (issue closed, regrouped).
GROUP_ATTEMPTS = 20
#: Fingerprint groups whose issue id an API process remembers as a hint of which issue to WATCH
#: (a hint is always re-checked under WATCH; the map is cleared whole past this size).
GROUP_HINTS = 10_000
#: Locks an API process stripes its fingerprint groups over, so its threads write one group one
#: at a time instead of failing each other's WATCH (two groups rarely share one).
GROUP_LOCK_STRIPES = 64
# ---------------------------------------------------------------- dashboard (api/ui, docs/dashboard.md)
#: Lifetime of a dashboard session cookie: a working day, so a forgotten tab stops acting on its own.
UI_SESSION_SECONDS = 12 * 3600
#: Rows per dashboard table page (issues, queue, signals): one screen, and the bound on each page's reads.
UI_PAGE_SIZE = 50
#: Blockers the queue page names per blocked issue (the rest are counted): bounds its reads.
UI_BLOCKERS_SHOWN = 5
#: Days a per-day issue counter hash (``P:stats:day:*``) lives: the overview reads the last 7.
STATS_DAY_TTL_DAYS = 35
#: Hours a per-hour issue counter hash (``P:stats:hour:*``) lives: the overview reads the last 24.
STATS_HOUR_TTL_HOURS = 48
#: Characters of a failed job's payload and error the Operations page shows (small whatever the job).
UI_EXCERPT_CHARS = 2000
# ---------------------------------------------------------------- prompt experiments (loop/prompts/experiments.py)
#: Completed-session durations kept per version for the median (the most recent ones).
EXPERIMENT_DURATION_SAMPLE = 200
#: Decisions kept in a template's history (newest).
TEMPLATE_HISTORY_LIMIT = 500
#: Seconds between the worker's experiment evaluations.
EXPERIMENT_SWEEP_SECONDS = 60.0
#: Smallest share of a template's dispatches a candidate may get, in percent.
CANDIDATE_SHARE_MIN = 1
#: Largest share a candidate may get, in percent: the active version keeps at least half the traffic.
CANDIDATE_SHARE_MAX = 50
#: Hash buckets an issue falls into for the split (percent: the share compares with the bucket).
EXPERIMENT_BUCKETS = 100
#: One-sided significance level of the completion-rate test. A promotion is reversible (rollback) and
#: opt-in (autoPromote), so a 5 % chance of promoting a version that is not better is acceptable; 0.01
#: would need several hundred sessions per version to detect a 15-point gain.
EXPERIMENT_ALPHA = 0.05
#: The standard normal quantile for EXPERIMENT_ALPHA (one-sided): z >= 1.645 is significant.
EXPERIMENT_Z_CRITICAL = 1.6449
# ---------------------------------------------------------------- scale-out (issue 18, docs/operations.md)
#: Age (s) after which the worker's relay enqueues an outbox entry itself: the API enqueues right after
#: recording it, so an older entry means that request died in between (or the queue Redis was down).
OUTBOX_RELAY_AFTER_SECONDS = 10
#: Seconds between relay passes (an entry waits at most this much longer than the age above).
OUTBOX_RELAY_SECONDS = 5
#: Entries one relay batch handles: bounded work per round trip, whatever the outbox holds.
OUTBOX_RELAY_BATCH = 200
#: Longest a request waits for LOOP_WAIT_REPLICAS replicas to confirm its writes before answering 503.
REPLICA_WAIT_MS = 1000
#: Version of `loop admin export`'s JSON-lines format (loop/store/transfer.py); import refuses others.
EXPORT_FORMAT = 1

"""Accepting a verified webhook: de-duplicate and enqueue the normalization job, atomically.

A delivery is a duplicate when its identity (``P:webhook:<provider>:<digest>``) or its exact
signed body (``P:webhook-body:<provider>:<sha256>``: a captured delivery replayed with a fresh,
unsigned delivery id) was accepted within ``LOOP_WEBHOOK_DEDUP_SECONDS``, the markers' TTL.
The dedup markers (-> job id) and the RQ job
(its hash and its place in the queue list) are written by ONE MULTI/EXEC, one round trip:
RQ queues its writes of the job into the transaction, and ``loop/lua/webhook_accept.lua``,
last in the same transaction, claims the marker for the job or removes the job again when
the marker already names another one (a duplicate). So either both exist or neither does:
a failed enqueue (Redis gone mid-request) never leaves a marker that would make the
provider's retry look like a duplicate, and concurrent copies of a delivery enqueue one job.

The script text is sent with EVAL rather than EVALSHA: inside MULTI a NOSCRIPT error (after
a Redis restart or SCRIPT FLUSH) would fail that one command while the job writes went
through. The connection retries a dropped command a few times (GitHub does not redeliver on
its own, so a transient 503 would lose the delivery); if the transaction had in fact been
applied, the re-run finds the marker naming its own job and only drops the extra queue entry.

With RQ on another Redis (``LOOP_QUEUE_URL``: a Redis Cluster for the data, or a separate queue
server) no transaction spans both, so acceptance takes two steps (:meth:`Intake.accept_via_outbox`):
``loop/lua/webhook_outbox.lua`` sets the markers and records the job's spec in the namespace's
outbox (the delivery is acknowledged from then on), then the job is enqueued with the same id on
RQ's Redis (unless it exists: WATCH) and the entry cleared. workers/outbox.py enqueues entries a
crash left behind; the job's done-marker keeps a delivery from being normalized twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import redis
from rq import Queue, Retry

from loop.scripts import source
from loop.signals.providers import Delivery
from loop.tunables import SIGNAL_JOB_TIMEOUT as JOB_TIMEOUT
from loop.tunables import SIGNAL_RESULT_TTL as RESULT_TTL

if TYPE_CHECKING:
    from loop.store.base import RedisStore

#: Dotted path RQ imports in the worker (the API never imports the worker code).
JOB_FUNC = "workers.signals.normalize_delivery"
#: The script without its documentation header: it is sent with every accepted webhook.
ACCEPT_SCRIPT = source("webhook_accept").split("]]", 1)[1].strip()
#: loop/lua/webhook_outbox.lua: step 1 when RQ lives on another Redis (LOOP_QUEUE_URL).
OUTBOX_SCRIPT = "webhook_outbox"
log = logging.getLogger("loop.signals")


def body_digest(body: bytes) -> str:
    """The raw signed body as a fixed-size key component (first 32 hex of its SHA-256)."""
    return hashlib.sha256(body).hexdigest()[:32]


@dataclass(frozen=True)
class Accepted:
    delivery_id: str
    status: str  # "queued" | "duplicate"
    job_id: str | None


class Intake:
    """Dedup + enqueue for one store (namespace) and its settings."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.settings = store.settings
        self._queue: Queue | None = None
        self._lock = threading.Lock()

    @property
    def queue(self) -> Queue:
        with self._lock:
            if self._queue is None:
                self._queue = Queue(self.settings.queue_name, connection=self.store.rq)
            return self._queue

    def job_spec(self, delivery: Delivery, body: bytes) -> dict[str, Any]:
        """The job's only argument: everything it needs, nothing secret."""
        return {
            "v": 1,
            "namespace": self.settings.namespace,
            "promote": self.settings.promote_signals_to_todo,
            "dedupTtl": self.settings.webhook_dedup_seconds,
            "provider": delivery.provider,
            "deliveryId": delivery.delivery_id,
            "digest": delivery.digest,
            "meta": dict(delivery.meta),
            "body": body.decode("utf-8"),
            "receivedAt": self.store.now(),
        }

    def enqueue_call(self, spec: dict[str, Any], job_id: str, pipe: redis.client.Pipeline) -> Any:
        """Queue the normalization job ``job_id`` for ``spec`` on ``pipe`` (RQ's Redis); returns the job."""
        intervals = list(self.settings.webhook_retry_intervals)
        return self.queue.enqueue_call(
            JOB_FUNC, args=(spec,), job_id=job_id, pipeline=pipe,
            retry=Retry(max=len(intervals), interval=intervals),
            timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=self.settings.failed_job_ttl,
            description=f"normalize {spec['provider']} delivery {spec['deliveryId']}",
            meta={"provider": spec["provider"], "deliveryId": spec["deliveryId"],
                  "namespace": self.settings.namespace},
        )

    def accept(self, delivery: Delivery, body: bytes) -> Accepted:
        if self.settings.separate_queue:
            return self.accept_via_outbox(delivery, body)
        queue = self.queue
        marker = self.store.keys.webhook_delivery(delivery.provider, delivery.digest)
        body_marker = self.store.keys.webhook_body(delivery.provider, body_digest(body))
        job_id = uuid.uuid4().hex
        pipe: redis.client.Pipeline  # RQ's binary connection: replies are bytes, as redis-py types them
        with queue.connection.pipeline(transaction=True) as pipe:
            job = self.enqueue_call(self.job_spec(delivery, body), job_id, pipe)
            pipe.eval(ACCEPT_SCRIPT, 4, marker, queue.key, job.key, body_marker, job_id,
                      self.settings.webhook_dedup_seconds)
            queued = pipe.execute()[-1] == 1
        if queued:
            return Accepted(delivery.delivery_id, "queued", job_id)
        return Accepted(delivery.delivery_id, "duplicate", None)

    # ------------------------------------------------------------ outbox (RQ on another Redis)
    def accept_via_outbox(self, delivery: Delivery, body: bytes) -> Accepted:
        """Record the delivery in the namespace's outbox (dedup included), then enqueue its job.

        Once :meth:`record` returned, the delivery is acknowledged: if the enqueue fails (the
        queue Redis is down, the process dies), the worker's relay enqueues it later."""
        job_id = uuid.uuid4().hex
        spec = self.job_spec(delivery, body)
        if not self.record(delivery, body, spec, job_id):
            return Accepted(delivery.delivery_id, "duplicate", None)
        try:
            self.relay_one(job_id, spec)
        except redis.RedisError as exc:
            log.warning("webhook job %s left to the outbox relay: %s", job_id, exc)
        return Accepted(delivery.delivery_id, "queued", job_id)

    def record(self, delivery: Delivery, body: bytes, spec: dict[str, Any], job_id: str) -> bool:
        """Step 1: dedup markers and the outbox entry, in the namespace's slot (webhook_outbox.lua)."""
        keys = self.store.keys
        return int(self.store.scripts[OUTBOX_SCRIPT](
            keys=[keys.webhook_delivery(delivery.provider, delivery.digest),
                  keys.webhook_body(delivery.provider, body_digest(body)),
                  keys.webhook_outbox(), keys.webhook_outbox_due()],
            args=[job_id, self.settings.webhook_dedup_seconds, orjson.dumps(spec), self.store.now()])) == 1

    def relay_one(self, job_id: str, spec: dict[str, Any]) -> bool:
        """Step 2: enqueue job ``job_id`` on RQ's Redis unless it exists, then drop the outbox entry.

        True when this call enqueued it. WATCH on the job's hash makes concurrent relays (the API
        and a worker) enqueue it once."""
        conn = self.queue.connection
        job_key = self.queue.job_class.key_for(job_id)
        enqueued = False
        with conn.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(job_key)  # type: ignore[no-untyped-call]
                if not pipe.exists(job_key):
                    pipe.multi()
                    self.enqueue_call(spec, job_id, pipe)
                    pipe.execute()
                    enqueued = True
            except redis.WatchError:
                pass  # another relay enqueued it meanwhile
        with self.store.r.pipeline() as done:
            done.hdel(self.store.keys.webhook_outbox(), job_id)
            done.zrem(self.store.keys.webhook_outbox_due(), job_id)
            done.execute()
        return enqueued

    def relay_due(self, older_than_ms: int, batch: int) -> int:
        """Enqueue the outbox entries recorded before ``older_than_ms`` whose job is missing (at most
        ``batch``); returns how many this call enqueued."""
        keys = self.store.keys
        ids = self.store.r.zrangebyscore(keys.webhook_outbox_due(), "-inf", older_than_ms, start=0, num=batch)
        enqueued = 0
        for job_id in ids:
            raw = self.store.r.hget(keys.webhook_outbox(), job_id)
            if raw is None:  # cleared by its request meanwhile
                self.store.r.zrem(keys.webhook_outbox_due(), job_id)
                continue
            enqueued += self.relay_one(job_id, orjson.loads(raw))
        return enqueued

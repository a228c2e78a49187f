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
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from rq import Queue, Retry

from loop import connection
from loop.redis_errors import DeadlineRetry
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


def body_digest(body: bytes) -> str:
    """The raw signed body as a fixed-size key component (first 32 hex of its SHA-256)."""
    return hashlib.sha256(body).hexdigest()[:32]


def binary_client(client: redis.Redis) -> redis.Redis:
    """A client on the same server/db as ``client`` that does NOT decode replies (RQ pickles)."""
    # Dropped connections are retried briefly; a silent Redis is not waited on again (the timed-out
    # attempt already took the socket timeout), so the webhook answers 503 within that bound.
    return connection.binary_client(client, retry=DeadlineRetry())


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

    def accept(self, delivery: Delivery, body: bytes) -> Accepted:
        queue = self.queue
        marker = self.store.keys.webhook_delivery(delivery.provider, delivery.digest)
        body_marker = self.store.keys.webhook_body(delivery.provider, body_digest(body))
        intervals = list(self.settings.webhook_retry_intervals)
        job_id = uuid.uuid4().hex
        pipe: redis.client.Pipeline  # RQ's binary connection: replies are bytes, as redis-py types them
        with queue.connection.pipeline(transaction=True) as pipe:
            job = queue.enqueue_call(
                JOB_FUNC, args=(self.job_spec(delivery, body),), job_id=job_id, pipeline=pipe,
                retry=Retry(max=len(intervals), interval=intervals),
                timeout=JOB_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=self.settings.failed_job_ttl,
                description=f"normalize {delivery.provider} delivery {delivery.delivery_id}",
                meta={"provider": delivery.provider, "deliveryId": delivery.delivery_id,
                      "namespace": self.settings.namespace},
            )
            pipe.eval(ACCEPT_SCRIPT, 4, marker, queue.key, job.key, body_marker, job_id,
                      self.settings.webhook_dedup_seconds)
            queued = pipe.execute()[-1] == 1
        if queued:
            return Accepted(delivery.delivery_id, "queued", job_id)
        return Accepted(delivery.delivery_id, "duplicate", None)

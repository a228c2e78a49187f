"""``GET /metrics`` in the Prometheus text format (docs/operations.md, "Metrics").

The counters are :mod:`loop.metrics` (this process's, or every process's files under
``PROMETHEUS_MULTIPROC_DIR``). Gauges about the backlog are read from Redis at scrape time in a
fixed number of commands (ZCARD/LLEN/one job hash), never in proportion to the backlog.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC
from typing import TYPE_CHECKING

import falcon
import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

from api.http import Api, Op, Route
from loop.dispatch.sessions import NEEDS_REVIEW_LABEL

if TYPE_CHECKING:
    from loop.store.base import RedisStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class BacklogGauges(Collector):
    """Gauges read from Redis at scrape time: a fixed number of commands whatever the backlog."""

    def __init__(self, store: RedisStore, queue_name: str) -> None:
        self.store = store
        self.queue_name = queue_name

    def collect(self) -> Iterator[Metric]:
        from rq import Queue, Worker
        from rq.job import Job
        from rq.registry import FailedJobRegistry, ScheduledJobRegistry
        from rq.utils import utcparse

        up = GaugeMetricFamily("loop_redis_up", "1 when Redis answered this scrape's reads")
        store, keys = self.store, self.store.keys
        queue = Queue(self.queue_name, connection=store.rq)
        try:
            now = store.now()
            pipe = store.r.pipeline(transaction=False)
            pipe.zcard(keys.dispatch_ready())
            pipe.zcard(keys.dispatch_leases())
            pipe.get(keys.lease_sweep())
            pipe.hget(keys.label_names(), NEEDS_REVIEW_LABEL)
            pipe.hgetall(keys.session_outcomes())
            ready, leased, swept, review, closed = pipe.execute()
            # RQ's keys: on RQ's Redis (LOOP_QUEUE_URL, else the data Redis itself).
            qpipe = queue.connection.pipeline(transaction=False)
            qpipe.llen(queue.key)
            qpipe.lindex(queue.key, 0)
            qpipe.zcard(ScheduledJobRegistry.key_template.format(self.queue_name))
            qpipe.zcard(FailedJobRegistry.key_template.format(self.queue_name))
            queued, oldest, retrying, failed = qpipe.execute()
            parked = int(store.r.zcard(keys.issue_index("label", review))) if review else 0
            age = 0.0
            if oldest:
                enqueued = queue.connection.hget(
                    Job.key_for(oldest if isinstance(oldest, str) else oldest.decode()), "enqueued_at")
                if enqueued:
                    text = enqueued if isinstance(enqueued, str) else enqueued.decode()
                    at = utcparse(text).replace(tzinfo=UTC).timestamp() * 1000
                    age = max(0.0, (now - at) / 1000)
            live = len(Worker.all(queue=queue))  # O(workers), not backlog
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, value in (
            ("loop_dispatch_ready_issues", "Issues eligible for dispatch now", ready),
            ("loop_dispatch_active_leases", "Claims holding a lease", leased),
            ("loop_parked_issues", f"Issues labelled {NEEDS_REVIEW_LABEL} (parked after repeated strikes)", parked),
            ("loop_webhook_queue_depth", "Webhook jobs waiting in the queue", queued),
            ("loop_webhook_queue_oldest_age_seconds", "How long the oldest queued webhook job has waited", age),
            ("loop_webhook_jobs_retrying", "Webhook jobs waiting for a retry", retrying),
            ("loop_webhook_jobs_failed", "Webhook jobs that failed every attempt (RQ failed registry)", failed),
            ("loop_workers_live", "RQ workers heartbeating on the queue", live),
            ("loop_lease_sweep_age_seconds", "Seconds since the last periodic lease sweep (-1: never)",
             (now - int(swept)) / 1000 if swept else -1),
        ):
            g = GaugeMetricFamily(name, doc)
            g.add_metric([], float(value))
            yield g
        # Kept in Redis by every close's MULTI: one count per close, whichever process closed it.
        sessions = CounterMetricFamily("loop_sessions_closed", "Agent sessions closed, by outcome "
                                       "(completed, failed, expired, released)", labels=["outcome"])
        for outcome, count in sorted(closed.items()):
            sessions.add_metric([outcome], float(count))
        yield sessions


class _Scrape(Collector):
    """What one scrape collects: this process (or every process's files) plus the Redis gauges."""

    def __init__(self, gauges: BacklogGauges) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            merged = CollectorRegistry()
            MultiProcessCollector(merged, folder)  # type: ignore[no-untyped-call]
            yield from merged.collect()
        else:
            yield from REGISTRY.collect()
        yield from self.gauges.collect()


class Metrics:
    def __init__(self, api: Api) -> None:
        self.scrape = _Scrape(BacklogGauges(api.store, api.settings.queue_name))

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE
        resp.data = generate_latest(self.scrape)


def routes(api: Api) -> list[Route]:
    return [Route("/metrics", Metrics(api), [
        Op("GET", "Prometheus metrics (keyed unless LOOP_METRICS_PUBLIC=true)", "System",
           public=api.settings.metrics_public, responses={200: "Prometheus text format"},
           response_body={"type": "string"}, media_type="text/plain"),
    ])]

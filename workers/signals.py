"""The RQ job that turns an accepted webhook delivery into a signal and its triage issue.

Idempotent: the delivery's "done" guard (``P:signals:done:<provider>:<digest>``) is written in
the same MULTI as the signal and the issue, and WATCHed while that transaction prepares (see
:mod:`loop.store.signals`). A retry after a crash, a requeue by an operator, or two workers
running the same job concurrently all end with exactly one signal and one issue.

The job writes to the Redis it was dequeued from, in the namespace named by the job itself,
so one worker pool can serve several namespaces and tests can use unique namespaces.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import orjson
import redis

from loop import connection, metrics, runtime
from loop.connection import AnyRedis
from loop.errors import ConfigError
from loop.models import GOAL_FIELDS
from loop.runtime import Loop, build
from loop.settings import Settings
from loop.signals.common import Normalized
from loop.signals.providers import PROVIDERS
from loop.store.base import DEFAULT_REDIS_URL, connect
from loop.store.goals import MEASURED, Reading


def _no_checkpoint(point: str) -> None:
    """In production the job passes its checkpoints without stopping."""


#: Called with "before-write" and "after-write" as the job passes them: the seam where a chaos test
#: holds the job to SIGKILL its work-horse at a known point (``tests/signal_job_hold.py`` replaces it
#: in the test's worker process).
checkpoint: Callable[[str], None] = _no_checkpoint

JOB_NAME = "normalize_delivery"
log = logging.getLogger("loop.worker.jobs")


@cache
def _base_settings() -> Settings:
    """The worker process's settings when its environment has them, defaults otherwise."""
    try:
        return Settings.from_env()
    except ConfigError:
        return Settings()


_clients: dict[tuple[int, int], redis.Redis] = {}


def _decoding_client(conn: redis.Redis) -> redis.Redis:
    """A ``str``-returning client on the RQ connection's server (cached per process)."""
    key = (os.getpid(), id(conn.connection_pool))
    client = _clients.get(key)
    if client is None:
        if len(_clients) >= 8:  # a long-lived SimpleWorker seeing many connections; horses hold one
            _clients.clear()
        pool = conn.connection_pool
        # No CLIENT SETINFO: this connection lives for one job (see workers.runner.rq_connection).
        kwargs = {**pool.connection_kwargs, "decode_responses": True, "driver_info": None}
        client = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))
        _clients[key] = client
    return client


def _data_client(queue_conn: redis.Redis) -> AnyRedis:
    """The data Redis of a job: RQ's own server when Loop's data lives there, else ``REDIS_URL``
    (a cluster, a Sentinel master or another Redis), one client per process."""
    settings = _base_settings()
    if not settings.separate_queue and connection.parse(settings.redis_url or DEFAULT_REDIS_URL).kind == "single":
        return _decoding_client(queue_conn)
    return _url_client(os.getpid(), settings.redis_url or DEFAULT_REDIS_URL)


@cache
def _url_client(pid: int, url: str) -> AnyRedis:
    return connect(url, driver_info=None)


def store_for(spec: dict[str, Any], client: AnyRedis | None = None) -> Loop:
    if client is None:
        from rq import get_current_job

        job = get_current_job()
        if job is None:
            raise RuntimeError("normalize_delivery needs a client outside an RQ worker")
        client = _data_client(job.connection)
    settings = dataclasses.replace(
        _base_settings(), namespace=spec["namespace"], promote_signals_to_todo=bool(spec["promote"]))
    return build(client, settings, runtime.process_clock(settings))  # the seam, looked up now


def normalize_delivery(spec: dict[str, Any], client: redis.Redis | None = None) -> dict[str, Any]:
    """Map the delivery's payload to a signal + triage issue (at most once per delivery).

    One log line and the job metrics per run (ids, provider, outcome, duration: never the payload).
    """
    started = time.perf_counter()
    fields: dict[str, Any] = {"job": JOB_NAME, "provider": spec.get("provider"), "deliveryId": spec.get("deliveryId")}
    try:
        result = _normalize(spec, client)
    except Exception as exc:
        _done(fields, started, "error", error=type(exc).__name__)
        raise
    _done(fields, started, "ok", status=result["status"])
    return result


def _done(fields: dict[str, Any], started: float, outcome: str, **more: Any) -> None:
    seconds = time.perf_counter() - started
    metrics.JOBS.labels(JOB_NAME, outcome).inc()
    metrics.JOB_DURATION.labels(JOB_NAME).observe(seconds)
    line = {**fields, "outcome": outcome, "durationMs": round(seconds * 1000, 2), **more}
    log.log(logging.INFO if outcome == "ok" else logging.WARNING, "job %s %s", JOB_NAME, outcome,
            extra={"fields": line})


def _normalize(spec: dict[str, Any], client: redis.Redis | None) -> dict[str, Any]:
    store = store_for(spec, client)
    provider = PROVIDERS[spec["provider"]]
    guard = store.keys.signal_done(spec["provider"], spec["digest"])
    payload = orjson.loads(spec["body"])
    normalized = provider.normalize(spec.get("meta") or {}, payload)
    if normalized is None:
        return {"deliveryId": spec["deliveryId"], "status": "ignored"}
    signals = store.signals
    checkpoint("before-write")
    issue_data = signals.issue_data(normalized.source, normalized.severity, payload, normalized.title,
                                    description=normalized.description)
    recorded = signals.create(
        {"source": normalized.source, "sourceId": normalized.source_id, "type": normalized.type,
         "severity": normalized.severity, "payload": payload, "deliveryId": spec["deliveryId"],
         "fingerprint": normalized.fingerprint},
        issue_data, guard=guard, guard_ttl=int(spec.get("dedupTtl") or 7 * 24 * 3600),
        readings=metric_readings(store, normalized, int(spec.get("receivedAt") or store.now())),
    )
    checkpoint("after-write")
    return {"deliveryId": spec["deliveryId"], "status": "created" if recorded.created else "existing",
            "signalId": recorded.signal["id"], "issueId": recorded.issue["id"], "grouped": recorded.grouped}


def metric_readings(store: Loop, normalized: Normalized, at: int) -> list[tuple[str, Reading]]:
    """A metric delivery's reading for each measured (active or achieved) goal of its metric."""
    if normalized.metric is None or normalized.value is None:
        return []
    goals = store.goals.s.get_rows("goal", GOAL_FIELDS, store.goals.by_metric(normalized.metric))
    return [(g["id"], Reading(normalized.value, at, normalized.source)) for g in goals
            if g["deletedAt"] is None and g["status"] in MEASURED]

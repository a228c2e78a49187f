"""Builds and runs the RQ worker for a :class:`~loop.settings.Settings`."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

import redis
from rq import Queue, Worker

from loop.connection import connect_single
from loop.errors import ConfigError
from loop.runtime import DEFAULT_REDIS_URL
from loop.settings import Settings
from workers import experiments, leases, outbox, retention

log = logging.getLogger("loop.worker")

#: Maintenance run by every (non-burst) worker in background threads: (interval seconds, fn(settings)).
PERIODIC: list[tuple[float, Callable[[Settings], None]]] = [
    (leases.LEASE_SWEEP_SECONDS, leases.sweep),
    (leases.SCHEDULE_SWEEP_SECONDS, leases.tick),
    (retention.RETENTION_SWEEP_SECONDS, retention.sweep),
    (experiments.EXPERIMENT_SWEEP_SECONDS, experiments.sweep),
    (outbox.OUTBOX_RELAY_SECONDS, outbox.relay),
]


def rq_connection(settings: Settings) -> redis.Redis:
    """RQ's Redis (``LOOP_QUEUE_URL``, else ``REDIS_URL``). RQ stores pickled bytes: its connection
    must not decode responses.

    ``driver_info=None`` skips CLIENT SETINFO: every forked work-horse reconnects, and building
    each connection's driver info reads the package metadata (~2.5 ms of CPU) plus two round trips.
    """
    url = settings.queue_url or settings.redis_url or DEFAULT_REDIS_URL
    try:
        return connect_single(url, decode_responses=False, driver_info=None)
    except ValueError as exc:
        name = "LOOP_QUEUE_URL" if settings.queue_url else "REDIS_URL"
        raise ConfigError(f"{name} cannot serve RQ: {exc}") from None


def queue_for(settings: Settings, connection: redis.Redis | None = None) -> Queue:
    return Queue(settings.queue_name, connection=connection or rq_connection(settings))


def start_periodic(settings: Settings, stop: threading.Event) -> None:
    """Run each :data:`PERIODIC` job every interval, for every namespace served, until ``stop`` is set
    (waits, never spins)."""
    # A pool serving several namespaces (LOOP_NAMESPACES) runs each job for each of them in turn.
    every = [dataclasses.replace(settings, namespace=ns) for ns in settings.served_namespaces]

    def run(interval: float, fn: Callable[[Settings], None]) -> None:
        while not stop.wait(interval):
            for one in every:
                try:
                    fn(one)
                except Exception:  # a failed sweep must not kill the worker (nor skip the other namespaces)
                    log.exception("periodic job %s failed for namespace %s",
                                  getattr(fn, "__qualname__", fn), one.namespace)

    for interval, fn in PERIODIC:
        threading.Thread(target=run, args=(interval, fn), daemon=True, name=f"periodic-{fn.__name__}").start()


def preload(settings: Settings) -> None:
    """Import the job modules and every store extension once, in the worker process.

    RQ forks a work-horse per job; a module first imported inside the horse is imported
    again for every job (the prompt engine's pybars import alone takes seconds).
    """
    import workers.signals  # noqa: F401
    from loop.runtime import store_from_settings

    store_from_settings(settings)


def run_worker(settings: Settings, burst: bool = False) -> None:
    """Work until stopped, surviving Redis outages (:mod:`workers.supervisor`); ``burst``: run RQ's
    stock worker until the queue is empty (tests, one-off drains)."""
    if not burst:
        from workers.supervisor import Supervisor

        Supervisor(settings).run()
        return
    preload(settings)
    conn = rq_connection(settings)
    worker = Worker([queue_for(settings, conn)], connection=conn)
    worker.work(burst=True, with_scheduler=True)

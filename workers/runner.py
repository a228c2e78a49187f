"""Builds and runs the RQ worker for a :class:`~loop.settings.Settings`."""

from __future__ import annotations

import redis
from rq import Queue, Worker

from loop.runtime import DEFAULT_REDIS_URL
from loop.settings import Settings


def rq_connection(settings: Settings) -> redis.Redis:
    """RQ stores pickled bytes: its connection must not decode responses."""
    return redis.Redis.from_url(settings.redis_url or DEFAULT_REDIS_URL)


def queue_for(settings: Settings, connection: redis.Redis | None = None) -> Queue:
    return Queue(settings.queue_name, connection=connection or rq_connection(settings))


def run_worker(settings: Settings, burst: bool = False) -> None:
    conn = rq_connection(settings)
    worker = Worker([queue_for(settings, conn)], connection=conn)
    worker.work(burst=burst, with_scheduler=True)

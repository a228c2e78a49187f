"""What a crash leaves in RQ's keys, repaired every few seconds instead of every 10 minutes.

* **Scheduler** (:class:`SchedulerTick`): moves due retries from ``rq:scheduled:<queue>`` to the
  queue while holding RQ's scheduler lock for that queue, with a short TTL
  (:data:`~workers.recovery.SCHEDULER_LOCK_SECONDS`) so a dead holder frees it within seconds.
* **Maintenance** (:func:`maintain`): RQ's registry cleanup (a started job whose worker stopped
  heartbeating is retried), the worker registry, and jobs stranded in the intermediate list
  (dequeued by a worker that died before starting them) put back on the queue.

Both run in threads of ``python -m workers`` (:mod:`workers.supervisor`) under locks, so any
number of workers can run them; every step is safe to repeat after a crash.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from rq import Queue
from rq.job import JobStatus
from rq.registry import clean_registries
from rq.scheduler import RQScheduler
from rq.scripts import acquire_or_refresh_lock, release_lock
from rq.utils import as_text
from rq.worker_registration import clean_worker_registry

from workers.recovery import SCHEDULER_LOCK_SECONDS

log = logging.getLogger("loop.worker.maintenance")

#: Lock held while one worker runs the maintenance of a queue (``rq:`` prefix: RQ's key space).
MAINTENANCE_LOCK_KEY = "rq:loop-maintenance:{queue}"
#: When a job was first seen stranded in the intermediate list (unix seconds); TTL one day.
STRANDED_SINCE_KEY = "rq:loop-stranded-since:{queue}:{job_id}"


class SchedulerTick:
    """Enqueues the due scheduled jobs of one queue when this process holds its scheduler lock."""

    def __init__(self, queue: Queue, lock_seconds: int = SCHEDULER_LOCK_SECONDS) -> None:
        self.queue = queue
        self.name = f"loop-{uuid.uuid4().hex}"
        self.lock_key = RQScheduler.get_locking_key(queue.name)
        self.lock_seconds = lock_seconds
        self._scheduler = RQScheduler([queue.name], connection=queue.connection, serializer=queue.serializer)
        self._scheduler.prepare_registries([queue.name])

    def __call__(self) -> bool:
        """One tick; True when this process holds the lock (and enqueued what was due)."""
        if acquire_or_refresh_lock(self.queue.connection, self.lock_key, self.name, self.lock_seconds) == "taken":
            return False
        self._scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        return True

    def release(self) -> None:
        release_lock(self.queue.connection, self.lock_key, self.name)


def maintain(queue: Queue, abandon_seconds: int, lock_seconds: int, now: float) -> bool:
    """One maintenance pass over ``queue`` unless another worker is running one.

    Not RQ's ``clean_registries`` lock: that one lives 899 s when its holder dies mid-pass.
    """
    conn = queue.connection
    key = MAINTENANCE_LOCK_KEY.format(queue=queue.name)
    token = uuid.uuid4().hex
    if not conn.set(key, token, nx=True, ex=lock_seconds):
        return False
    try:
        clean_registries(queue)  # started jobs past their heartbeat: retried, or failed when out of retries
        clean_worker_registry(queue)
        requeue_stranded(queue, abandon_seconds, now)
    finally:
        release_lock(conn, key, token)
    return True


def requeue_stranded(queue: Queue, grace_seconds: float, now: float) -> list[str]:
    """Put back on the queue the jobs a dead worker dequeued but never started; their ids.

    A worker moves a job id from the queue to ``<queue>:intermediate`` (BLMOVE), then registers
    its execution in the started registry; the work-horse removes the id from the list. An id
    still there, not started, for ``grace_seconds`` belongs to a worker that died in between.
    RQ fails such a job after a minute, at its 10-minute maintenance; a job that never ran is
    simply queued again (front), unless it is no longer queued or is already back on the queue.
    """
    conn = queue.connection
    intermediate = queue.intermediate_queue
    job_ids = intermediate.get_job_ids()
    if not job_ids:
        return []
    started = set(queue.started_job_registry.get_job_ids(cleanup=False))
    requeued = []
    for job_id in job_ids:
        if job_id in started:
            continue
        since_key = STRANDED_SINCE_KEY.format(queue=queue.name, job_id=job_id)
        conn.set(since_key, now, nx=True, ex=24 * 3600)
        since = conn.get(since_key)
        if since is not None and now - float(since) < grace_seconds:
            continue
        if _requeue(queue, job_id, since_key):
            requeued.append(job_id)
    if requeued:
        log.warning("requeued %d job(s) stranded in %s: %s", len(requeued), intermediate.key, requeued)
    return requeued


def _requeue(queue: Queue, job_id: str, since_key: str) -> bool:
    """Atomically (WATCH) move one stranded id back to the queue; False when it only had to go."""
    job_key = queue.job_class.key_for(job_id)
    started_key = queue.started_job_registry.key
    intermediate_key = queue.intermediate_queue.key
    pipe: Any  # RQ's binary connection (bytes replies); redis-py leaves Pipeline.watch untyped
    with queue.connection.pipeline() as pipe:
        while True:
            try:
                # A worker starting the job now writes the started registry and the job hash.
                pipe.watch(job_key, started_key, intermediate_key, queue.key)
                status = as_text(pipe.hget(job_key, "status") or b"")
                started = any(as_text(entry).split(":", 1)[0] == job_id for entry in pipe.zrange(started_key, 0, -1))
                back = (status == JobStatus.QUEUED.value and not started
                        and pipe.lpos(queue.key, job_id) is None)
                pipe.multi()
                pipe.lrem(intermediate_key, 1, job_id)
                if back:
                    queue.push_job_id(job_id, pipeline=pipe, at_front=True)
                pipe.delete(since_key)
                pipe.execute()
                return bool(back)
            except redis.WatchError:
                continue

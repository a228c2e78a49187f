"""The worker's recovery pieces one by one, against the test Redis with injected time:
reconnect backoff, tunables, stranded-job requeue, the maintenance and scheduler locks."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rq import Queue
from rq.job import Job
from rq.scheduler import RQScheduler

from loop.errors import ConfigError
from tests.fixtures.webhooks import open_queue
from workers.maintenance import (
    MAINTENANCE_LOCK_KEY,
    STRANDED_SINCE_KEY,
    SchedulerTick,
    maintain,
    requeue_stranded,
)
from workers.recovery import JOB_HEARTBEAT_SECONDS, SCHEDULER_LOCK_SECONDS, Recovery, backoff
from workers.supervisor import LoopWorker


def noop() -> None:
    """The job the tests enqueue (never run here)."""


@pytest.fixture
def queue(settings: Any) -> Iterator[Queue]:
    for q in open_queue(settings):
        try:
            yield q
        finally:
            keys = list(q.connection.scan_iter(match=f"rq:*{q.name}*"))
            if keys:
                q.connection.delete(*keys)


def strand(queue: Queue) -> Job:
    """A queued job moved to the intermediate list, as by a worker that died after BLMOVE."""
    job = queue.enqueue(noop)
    assert queue.connection.lmove(queue.key, queue.intermediate_queue.key) is not None
    return job


def test_backoff_doubles_from_a_quarter_second_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    assert [backoff(n, 5, lambda: 1.0) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0]
    assert [backoff(n, 5, lambda: 0.0) for n in (1, 3, 6, 1000)] == [0.125, 0.5, 2.5, 2.5]
    assert backoff(10**6, 2, lambda: 1.0) == 2.0


def test_recovery_tunables_come_from_the_environment_and_a_bad_value_names_its_variable() -> None:
    assert Recovery.from_env({}) == Recovery(maintenance_seconds=5, abandon_seconds=30, reconnect_max_seconds=5)
    r = Recovery.from_env({"LOOP_WORKER_MAINTENANCE_SECONDS": "2", "LOOP_WORKER_ABANDON_SECONDS": "9",
                           "LOOP_WORKER_RECONNECT_MAX_SECONDS": "3"})
    assert (r.maintenance_seconds, r.abandon_seconds, r.reconnect_max_seconds) == (2, 9, 3)
    for name, value in [("LOOP_WORKER_ABANDON_SECONDS", "0"), ("LOOP_WORKER_MAINTENANCE_SECONDS", "soon"),
                        ("LOOP_WORKER_RECONNECT_MAX_SECONDS", "301")]:
        with pytest.raises(ConfigError, match=name):
            Recovery.from_env({name: value})


def test_a_running_jobs_started_entry_outlives_its_last_heartbeat_by_the_abandon_time(queue: Queue) -> None:
    worker = LoopWorker([queue], connection=queue.connection, recovery=Recovery(abandon_seconds=7),
                        stop=threading.Event())
    job = queue.enqueue(noop, job_timeout=120)
    assert worker.job_monitoring_interval == JOB_HEARTBEAT_SECONDS
    assert worker.get_heartbeat_ttl(job) == JOB_HEARTBEAT_SECONDS + 7
    assert worker.get_heartbeat_ttl(job, working_time=118.5) == 1 + 7  # never past the job's own timeout


def test_a_stranded_job_is_queued_again_once_it_has_been_seen_stranded_for_the_grace_period(queue: Queue) -> None:
    job = strand(queue)
    assert requeue_stranded(queue, 15, now=1000.0) == []
    assert requeue_stranded(queue, 15, now=1014.0) == []  # a live worker may be about to start it
    assert queue.job_ids == []
    assert requeue_stranded(queue, 15, now=1015.0) == [job.id]
    assert queue.job_ids == [job.id]
    assert queue.intermediate_queue.get_job_ids() == []
    assert not queue.connection.exists(STRANDED_SINCE_KEY.format(queue=queue.name, job_id=job.id))


def test_a_stranded_id_of_a_started_job_is_left_to_the_started_registry(queue: Queue) -> None:
    job = strand(queue)
    queue.connection.zadd(queue.started_job_registry.key, {f"{job.id}:exec-1": 2000})
    assert requeue_stranded(queue, 1, now=1000.0) == []
    assert requeue_stranded(queue, 1, now=5000.0) == []
    assert queue.intermediate_queue.get_job_ids() == [job.id]
    assert queue.job_ids == []


def test_a_stranded_id_already_back_on_the_queue_or_no_longer_queued_is_only_dropped(queue: Queue) -> None:
    done = strand(queue)
    done.set_status("finished")
    back = strand(queue)
    queue.connection.rpush(queue.key, back.id)  # e.g. the started-registry cleanup retried it already
    for now in (1000.0, 1100.0):
        assert requeue_stranded(queue, 15, now=now) == []
    assert queue.job_ids == [back.id]
    assert queue.intermediate_queue.get_job_ids() == []


def test_maintenance_runs_under_a_short_lock_it_releases_and_skips_while_another_worker_holds_it(
        queue: Queue) -> None:
    key = MAINTENANCE_LOCK_KEY.format(queue=queue.name)
    queue.connection.set(key, "other", ex=15)
    job = strand(queue)
    assert maintain(queue, abandon_seconds=1, lock_seconds=15, now=1000.0) is False
    assert not queue.connection.exists(STRANDED_SINCE_KEY.format(queue=queue.name, job_id=job.id))
    queue.connection.delete(key)
    assert maintain(queue, abandon_seconds=1, lock_seconds=15, now=1000.0) is True
    assert maintain(queue, abandon_seconds=1, lock_seconds=15, now=1002.0) is True
    assert queue.job_ids == [job.id]
    assert not queue.connection.exists(key)


def test_an_abandoned_started_job_is_retried_by_the_maintenance_tick(queue: Queue, settings: Any) -> None:
    from rq import Retry

    job = queue.enqueue(noop, retry=Retry(max=2))
    queue.connection.lrem(queue.key, 1, job.id)
    job.set_status("started")
    queue.connection.zadd(queue.started_job_registry.key, {f"{job.id}:exec-1": 1})  # heartbeat long gone
    assert maintain(queue, abandon_seconds=30, lock_seconds=15, now=1000.0) is True
    assert queue.job_ids == [job.id]
    assert Job.fetch(job.id, connection=queue.connection).retries_left == 1


def test_one_scheduler_tick_holds_a_short_lived_lock_and_enqueues_due_jobs_and_the_next_takes_over_on_release(
        queue: Queue) -> None:
    job = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=1), noop)
    first, second = SchedulerTick(queue), SchedulerTick(queue)
    assert first() is True
    assert queue.job_ids == [job.id]
    assert second() is False
    key = RQScheduler.get_locking_key(queue.name)
    assert 0 < queue.connection.ttl(key) <= SCHEDULER_LOCK_SECONDS
    first.release()
    assert second() is True
    assert queue.connection.get(key).decode() == second.name


def test_the_recovery_defaults_keep_a_20_second_redis_pause_from_looking_like_an_abandoned_job() -> None:
    r = Recovery()
    assert r.abandon_seconds > 20
    assert dataclasses.replace(r, maintenance_seconds=40).maintenance_lock_seconds == 120


def test_the_lease_sweep_thread_keeps_sweeping_after_redis_errors(settings: Any, monkeypatch: Any) -> None:
    import redis

    from workers import runner

    calls: list[int] = []
    swept = threading.Event()

    def sweep(_: Any) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise redis.ConnectionError("Redis is restarting")
        swept.set()

    monkeypatch.setattr(runner, "PERIODIC", [(0.01, sweep)])
    stop = threading.Event()
    runner.start_periodic(settings, stop)
    try:
        assert swept.wait(5)
    finally:
        stop.set()

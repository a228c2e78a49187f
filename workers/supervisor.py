"""``python -m workers`` outlives Redis: a supervisor loop around a fresh RQ worker.

RQ's worker quits on an error in the middle of a job ("found an unhandled exception,
quitting") and its forked scheduler dies with Redis. Here the main thread runs one RQ worker
at a time and starts a new one (after a bounded, jittered backoff, once Redis answers PING)
whenever it quits without being asked to. Threads of the same process, each surviving Redis
errors on its own, run the scheduler tick, the maintenance tick (:mod:`workers.maintenance`)
and the periodic jobs (lease sweep). Tunables: :mod:`workers.recovery`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import redis
from rq import Queue, Worker
from rq.job import Job
from rq.utils import now

from loop.connection import connect_single
from loop.runtime import DEFAULT_REDIS_URL
from loop.settings import Settings
from workers.maintenance import SchedulerTick, maintain
from workers.recovery import JOB_HEARTBEAT_SECONDS, SCHEDULER_TICK_SECONDS, Recovery, backoff
from workers.runner import preload, queue_for, rq_connection, start_periodic

log = logging.getLogger("loop.worker")


class LoopWorker(Worker):
    """RQ's forking worker with Loop's recovery tunables.

    * A running job's started-registry entry lives ``abandon_seconds`` past its heartbeat (RQ:
      60 s plus up to 30), so a job whose worker died is retried soon after.
    * Reconnect waits inside RQ's dequeue loop are capped at ``reconnect_max_seconds`` (RQ: 60 s).
    * RQ's own 10-minute maintenance is left to the supervisor's maintenance tick.
    """

    def __init__(self, queues: list[Queue], connection: redis.Redis, recovery: Recovery,
                 stop: threading.Event) -> None:
        super().__init__(queues, connection=connection, job_monitoring_interval=JOB_HEARTBEAT_SECONDS)
        self.recovery = recovery
        self.stop_event = stop
        self.max_connection_wait_time = float(recovery.reconnect_max_seconds)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        interval = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            interval = max(0.0, min(job.timeout - working_time, interval))
        return int(interval) + self.recovery.abandon_seconds

    def run_maintenance_tasks(self) -> None:
        # RQ's pass takes an 899 s lock (held on if we die mid-pass) and restarts RQ's forked
        # scheduler, which this process replaces; the supervisor's maintenance tick does the rest.
        self.last_cleaned_at = now()  # type: ignore[assignment]  # rq annotates it as None

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_event.set()  # a requested stop ends the supervisor too, not just this worker
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


class Supervisor:
    """Runs RQ workers one after the other until SIGTERM/SIGINT, plus the maintenance threads."""

    def __init__(self, settings: Settings, recovery: Recovery | None = None) -> None:
        self.settings = settings
        self.recovery = recovery or Recovery.from_env()
        self.stop = threading.Event()
        self.worker: LoopWorker | None = None
        self.restarts = 0
        self._threads: list[threading.Thread] = []
        self._undead: list[LoopWorker] = []  # quit while Redis was down: deaths still to register
        self._probe = connect_single(settings.queue_url or settings.redis_url or DEFAULT_REDIS_URL,
                                     socket_connect_timeout=2, socket_timeout=5, driver_info=None)

    def run(self) -> None:
        preload(self.settings)
        self._install_signal_handlers()
        start_periodic(self.settings, self.stop)
        scheduler = SchedulerTick(queue_for(self.settings))
        maintenance_queue = queue_for(self.settings)
        r = self.recovery
        self._every("scheduler", SCHEDULER_TICK_SECONDS, scheduler)
        self._every("maintenance", float(r.maintenance_seconds), lambda: maintain(
            maintenance_queue, r.abandon_seconds, r.maintenance_lock_seconds, time.time()))
        try:
            attempt = 0
            while not self.stop.is_set():
                if not self._redis_answers():
                    attempt += 1
                    self.stop.wait(backoff(attempt, r.reconnect_max_seconds))
                    continue
                started = time.monotonic()
                self._run_worker()
                if self.stop.is_set():
                    break
                self.restarts += 1
                # A worker that ran a while quit for a new reason: start over from a short delay.
                attempt = 1 if time.monotonic() - started > 4 * r.reconnect_max_seconds else attempt + 1
                delay = backoff(attempt, r.reconnect_max_seconds)
                log.warning("RQ worker quit; starting a new one in %.1f s (restart %d)", delay, self.restarts)
                self.stop.wait(delay)
        finally:
            self.stop.set()
            for thread in self._threads:
                thread.join(timeout=10)
            with contextlib.suppress(redis.RedisError):
                scheduler.release()

    def _run_worker(self) -> None:
        worker: LoopWorker | None = None
        clean = False
        try:
            conn = rq_connection(self.settings)
            worker = LoopWorker([queue_for(self.settings, conn)], connection=conn, recovery=self.recovery,
                                stop=self.stop)
            self.worker = worker
            worker.work(burst=False)
            clean = True
        except SystemExit:  # RQ's cold shutdown (a second SIGTERM)
            self.stop.set()
        except redis.RedisError as exc:
            log.warning("RQ worker lost Redis: %s", exc)
        except Exception:
            log.exception("RQ worker crashed")
        finally:
            self._install_signal_handlers()  # RQ's handlers point at the dead worker
            if worker is not None:
                self._bury(worker, clean)

    def _bury(self, worker: LoopWorker, clean: bool) -> None:
        """Reap what a worker that quit mid-flight leaves in this process."""
        if worker.horse_pid:  # nobody would heartbeat or finish its job: it is retried instead
            with contextlib.suppress(OSError):
                worker.kill_horse(signal.SIGKILL)
                worker.wait_for_horse()
        thread = worker.pubsub_thread
        if thread is not None and thread.is_alive():  # it would retry its subscription forever
            thread.stop()
            thread.join(timeout=3)
        if not clean:
            self._undead.append(worker)

    def _redis_answers(self) -> bool:
        try:
            self._probe.ping()
        except redis.RedisError:
            return False
        while self._undead:  # so `rq info` stops listing workers that died with Redis
            with contextlib.suppress(redis.RedisError):
                self._undead.pop().register_death()  # type: ignore[no-untyped-call]
        return True

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _every(self, name: str, interval: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` every ``interval`` seconds in a thread until stop; Redis outages are logged
        once (and the recovery), not at every tick."""
        def loop() -> None:
            down = False
            while not self.stop.wait(interval):
                try:
                    fn()
                except redis.RedisError as exc:
                    if not down:
                        log.warning("%s tick: Redis unavailable (%s); retrying every %.0f s", name, exc, interval)
                    down = True
                    continue
                except Exception:
                    log.exception("%s tick failed", name)
                    continue
                if down:
                    log.info("%s tick: Redis is back", name)
                    down = False

        thread = threading.Thread(target=loop, daemon=True, name=f"loop-{name}")
        thread.start()
        self._threads.append(thread)

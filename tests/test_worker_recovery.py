"""Chaos: ``python -m workers`` outlives Redis crashes and pauses and its own processes' deaths.

Real processes: a private redis-server with ``appendfsync always`` (an acknowledged webhook
survives its ``kill -9``), the worker as a subprocess (forking work-horses), and the API app
in-process. Every acknowledged webhook must become exactly one signal within 60 s of Redis
being back, with no manual restart; the recovery tunables are shortened through the worker's
environment (``LOOP_WORKER_*``) so each test takes seconds.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq.scheduler import RQScheduler

from api.app import create_app
from loop.runtime import build
from loop.store import RedisStore, connect
from tests.conftest import Client
from tests.fixtures.webhooks import fixture_bytes, github_headers
from tests.redis_server import free_port, redis_binary
from tests.signal_job_hold import HOLD_ENV
from workers.runner import queue_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BODY = fixture_bytes("github/issues.opened.json")
#: ``python -m workers`` with the test-only job hold installed first (tests/signal_job_hold.py).
HELD_WORKER = "import sys, tests.signal_job_hold; from workers.__main__ import main; sys.exit(main())"
BOUND = 60.0  # seconds from Redis being back to every acknowledged webhook being a signal
FAST = {"LOOP_WORKER_ABANDON_SECONDS": "2", "LOOP_WORKER_MAINTENANCE_SECONDS": "1",
        "LOOP_WORKER_RECONNECT_MAX_SECONDS": "1"}


class DurableRedis:
    """A redis-server that keeps every acknowledged write across ``kill -9`` (AOF, fsync always)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="loop-redis-aof-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, 10, "redis-server to answer")

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> float:
    """Poll until ``predicate()`` is truthy; the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


@dataclasses.dataclass
class Rig:
    server: DurableRedis
    client: Client
    store: RedisStore
    queue_name: str
    env: dict[str, str]
    holds: Path
    logs: Path
    workers: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)

    def start_worker(self, **env: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.workers)}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-c", HELD_WORKER], cwd=ROOT, env={**self.env, **env},
                                stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        r = redis.Redis(port=self.server.port)
        wait_for(lambda: proc.poll() is not None or r.scard(f"rq:workers:{self.queue_name}"), 60,
                 "the worker to register")
        assert proc.poll() is None, self.log_text()
        return proc

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.logs.glob("*.log")))

    def post(self, delivery: str) -> None:
        # A distinct body per delivery: one body under two delivery ids is a replay (docs/webhooks.md).
        body = BODY.replace(b"{", b'{"delivery": "%s", ' % delivery.encode(), 1)
        r = self.client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", delivery),
                             auth=False)
        assert r.status_code == 202 and r.json["data"]["status"] == "queued", r.json

    def delivered(self) -> list[str]:
        """Delivery ids of the signals, one entry per signal (duplicates would show)."""
        page = self.client.get("/api/signals?limit=100").json
        return sorted(s["deliveryId"] for s in page["data"])

    def hold(self, point: str = "before-write") -> Callable[[], int]:
        """Make the next job wait at ``point``; returns a function waiting for its work-horse's pid."""
        (self.holds / point).touch()
        pid_file = self.holds / f"{point}.pid"

        def horse() -> int:
            wait_for(pid_file.exists, 60, f"a job to reach {point}")
            pid = int(pid_file.read_text())
            pid_file.unlink()
            return pid

        return horse

    def release(self, point: str = "before-write") -> None:
        (self.holds / point).unlink()

    def assert_exactly_one_signal_each(self, deliveries: list[str], since: float) -> float:
        took = wait_for(lambda: set(self.delivered()) >= set(deliveries), BOUND - (time.monotonic() - since),
                        f"signals for {deliveries}")
        assert self.delivered() == sorted(deliveries)
        assert self.client.get("/api/issues?type=signal").json["total"] == len(deliveries)
        return took


@pytest.fixture
def rig(settings: Any, clock: Any, tmp_path: Path) -> Iterator[Rig]:
    server = DurableRedis()
    server.start()
    s = dataclasses.replace(settings, redis_url=server.url, webhook_retry_intervals=(1, 1, 1))
    store = build(connect(server.url), s, clock)
    holds, logs = tmp_path / "holds", tmp_path / "logs"
    holds.mkdir()
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOP_")}
    env.update({"LOOP_API_KEY": "k", "REDIS_URL": server.url, "LOOP_QUEUE": s.queue_name,
                "LOOP_NAMESPACE": s.namespace, HOLD_ENV: str(holds), "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1", **FAST})
    r = Rig(server, Client(create_app(store, clock, s)), store, s.queue_name, env, holds, logs)
    try:
        yield r
    finally:
        for proc in r.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for gate in holds.iterdir():  # orphaned work-horses poll their gate: let them go
            gate.unlink()
        server.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_keeps_working_and_retrying_after_redis_is_killed_and_restarted_while_idle(rig: Rig) -> None:
    worker = rig.start_worker()
    rig.post("before")
    rig.assert_exactly_one_signal_each(["before"], time.monotonic())
    rig.server.kill9()
    time.sleep(2)  # down for a while: the worker and its scheduler hit refused connections
    rig.server.start()
    back = time.monotonic()
    # A work-horse killed mid-job needs the scheduler for its retry: it survived the outage too.
    horse = rig.hold()
    rig.post("after")
    os.kill(horse(), signal.SIGKILL)
    rig.release()
    rig.assert_exactly_one_signal_each(["before", "after"], back)
    assert worker.poll() is None, rig.log_text()


def test_a_job_running_when_redis_is_killed_becomes_exactly_one_signal_once_redis_is_back(rig: Rig) -> None:
    worker = rig.start_worker()
    horse = rig.hold()
    rig.post("mid-job")
    horse_pid = horse()
    rig.server.kill9()
    rig.release()  # the work-horse now writes to a Redis that is gone
    wait_for(lambda: not alive(horse_pid), 30, "the work-horse to give up")
    time.sleep(1)
    rig.server.start()
    back = time.monotonic()
    rig.post("later")
    rig.assert_exactly_one_signal_each(["later", "mid-job"], back)
    assert worker.poll() is None, rig.log_text()


def test_a_job_running_when_redis_is_paused_for_20_seconds_becomes_exactly_one_signal(rig: Rig) -> None:
    # Default abandon time (30 s): a 20 s pause must not make a running job look abandoned.
    worker = rig.start_worker(LOOP_WORKER_ABANDON_SECONDS="30")
    horse = rig.hold()
    rig.post("paused")
    horse()
    rig.server.signal(signal.SIGSTOP)
    try:
        rig.release()
        time.sleep(20)
    finally:
        rig.server.signal(signal.SIGCONT)
    back = time.monotonic()
    rig.post("resumed")
    rig.assert_exactly_one_signal_each(["paused", "resumed"], back)
    job_results = [queue_for(dataclasses.replace(rig.store.settings, redis_url=rig.server.url)).fetch_job(j)
                   for j in rig.store.r.mget(*rig.store.r.keys(rig.store.keys.webhook_delivery("*", "*")))]
    assert all(j is not None and j.is_finished and j.retries_left == 3 for j in job_results)
    assert worker.poll() is None, rig.log_text()


def test_a_sigkilled_worker_and_horse_leave_a_job_and_a_scheduler_lock_the_next_worker_takes_over(
        rig: Rig) -> None:
    worker = rig.start_worker()
    horse = rig.hold()
    rig.post("orphan")
    horse_pid = horse()
    lock_key = RQScheduler.get_locking_key(rig.queue_name)
    wait_for(lambda: rig.store.r.get(lock_key), 10, "the scheduler lock")  # it outlives its dead holder
    worker.kill()
    os.kill(horse_pid, signal.SIGKILL)
    worker.wait(10)
    rig.release()
    start = time.monotonic()
    successor = rig.start_worker()
    rig.assert_exactly_one_signal_each(["orphan"], start)
    assert successor.poll() is None, rig.log_text()


def test_a_job_stranded_in_the_intermediate_list_by_a_dead_worker_is_run(rig: Rig) -> None:
    rig.post("stranded")
    queue = queue_for(dataclasses.replace(rig.store.settings, redis_url=rig.server.url))
    # What a worker that died right after its BLMOVE leaves behind.
    assert queue.connection.lmove(queue.key, queue.intermediate_queue.key) is not None
    start = time.monotonic()
    rig.start_worker()
    rig.assert_exactly_one_signal_each(["stranded"], start)
    assert queue.connection.llen(queue.intermediate_queue.key) == 0

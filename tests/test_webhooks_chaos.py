"""Chaos: a work-horse SIGKILLed mid-job, and Redis stopping while webhooks arrive.

Real processes: an RQ worker subprocess (``workers.runner.run_worker``, forking work-horses)
and a private redis-server we can stop and restart.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from rq.registry import FailedJobRegistry

from api.app import create_app
from loop.runtime import build
from loop.store import connect
from tests.conftest import Client
from tests.fixtures.webhooks import drain, fixture_bytes, github_headers, open_queue, sentry_headers
from tests.redis_server import spawn_redis
from tests.signal_job_hold import HOLD_ENV
from workers.runner import queue_for

ROOT = Path(__file__).resolve().parent.parent
BODY = fixture_bytes("github/issues.opened.json")


def body_of(delivery: str) -> bytes:
    """A distinct body per delivery: one body sent under several ids is a replay (one signal)."""
    return BODY.replace(b"{", b'{"delivery": "' + delivery.encode() + b'", ', 1)
WORKER = "import tests.signal_job_hold; from loop.settings import Settings; from workers.runner import run_worker; " \
         "run_worker(Settings.from_env(), burst=True)"


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, webhook_retry_intervals=(0, 0))


@pytest.fixture
def rq_queue(settings):
    yield from open_queue(settings)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_held_worker(settings, redis_url: str, hold_dir) -> subprocess.Popen[bytes]:
    """A burst worker process whose jobs stop at the checkpoints named by files in ``hold_dir``."""
    env = {**os.environ, "LOOP_API_KEY": "k", "REDIS_URL": redis_url, "LOOP_QUEUE": settings.queue_name,
           "LOOP_NAMESPACE": settings.namespace, HOLD_ENV: str(hold_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def kill_horse_at(worker: subprocess.Popen[bytes], hold_dir, point: str) -> tuple[int, bytes]:
    """SIGKILL the work-horse once its job holds at ``point``, let the worker run the retry to the
    end of the burst, and expect a clean exit; (the horse's pid, the worker's output)."""
    try:
        pid_file = hold_dir / f"{point}.pid"
        wait_for(pid_file.exists, what="the job to reach " + point)
        horse = int(pid_file.read_text())
        os.kill(horse, signal.SIGKILL)
        (hold_dir / point).unlink()
        err, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err.decode()[-2000:]
    return horse, err


def totals(client) -> tuple[int, int]:
    return (client.get("/api/signals").json["total"], client.get("/api/issues?type=signal").json["total"])


@pytest.mark.slow
@pytest.mark.parametrize("point, outcome", [("before-write", "created"), ("after-write", "existing")])
def test_a_work_horse_killed_mid_job_is_retried_into_exactly_one_signal_and_issue(
        client, settings, rq_queue, redis_url, tmp_path, point, outcome):
    (tmp_path / point).touch()  # the job holds at this checkpoint (tests/signal_job_hold.py)
    r = client.post("/api/signals/github", body=BODY, headers=github_headers(BODY, "issues", "kill-1"), auth=False)
    assert r.status_code == 202
    (job_id,) = rq_queue.job_ids
    worker = start_held_worker(settings, redis_url, tmp_path)
    horse, err = kill_horse_at(worker, tmp_path, point)
    assert horse != worker.pid  # the job runs in the forked work-horse
    assert b"Work-horse terminated unexpectedly" in err
    job = rq_queue.fetch_job(job_id)
    assert job is not None and job.is_finished
    assert job.retries_left == len(settings.webhook_retry_intervals) - 1
    assert job.latest_result().return_value["status"] == outcome
    assert len(FailedJobRegistry(queue=rq_queue)) == 0
    assert totals(client) == (1, 1)


@pytest.mark.slow
def test_redis_stopping_during_webhooks_gives_503s_and_leaves_nothing_half_written(settings, clock):
    server = spawn_redis()
    try:
        s = dataclasses.replace(settings, redis_url=server.url)
        store = build(connect(server.url), s, clock)
        client = Client(create_app(store, clock, s))
        queue = queue_for(s)
        results: dict[str, list[tuple[int, str | None]]] = {}
        stop = threading.Event()

        def poster() -> None:
            errors_in_a_row = 0
            for i in range(10_000):
                delivery = f"d-{i}"
                body = body_of(delivery)
                r = client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", delivery),
                                auth=False)
                results[delivery] = [(r.status_code, (r.json.get("data") or {}).get("status"))]
                errors_in_a_row = errors_in_a_row + 1 if r.status_code == 503 else 0
                if errors_in_a_row >= 2 or stop.is_set():
                    return

        thread = threading.Thread(target=poster)
        thread.start()
        wait_for(lambda: len(results) >= 30, what="some accepted deliveries")
        # A clean stop that snapshots what was committed, like a restart with persistence.
        redis.Redis(port=server.port).shutdown(save=True)
        assert server.proc is not None
        server.proc.wait(10)
        server.proc = None
        thread.join(60)
        stop.set()
        assert not thread.is_alive()
        refused = [d for d, [(code, _)] in results.items() if code == 503]
        accepted = [d for d, [(code, status)] in results.items() if code == 202 and status == "queued"]
        assert refused and accepted
        assert {code for [(code, _)] in results.values()} <= {202, 503}
        # Redis is down: the API says so (and the provider will retry).
        late = body_of("late")
        r = client.post("/api/signals/github", body=late, headers=github_headers(late, "issues", "late"), auth=False)
        assert r.status_code == 503 and r.headers.get("Retry-After")

        server.start()  # same port and directory: the snapshot is loaded
        markers = {k: v for k in store.r.scan_iter(match=store.keys.webhook_delivery("*", "*"))
                   for v in [store.r.get(k)]}
        # Every marker has its job and every queued job its marker: no half-written delivery.
        assert sorted(markers.values()) == sorted(queue.job_ids)
        assert len(markers) >= len(accepted)
        # The provider retries what got a 503: each is queued now, or was in fact committed.
        for delivery in [*refused, "late"]:
            body = body_of(delivery)
            r = client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", delivery),
                            auth=False)
            assert r.status_code == 202 and r.json["data"]["status"] in ("queued", "duplicate")
        assert queue.count == len(results) + 1
        drain(queue)
        signals = client.get("/api/signals?limit=200").json
        pages = [signals]
        while sum(len(p["data"]) for p in pages) < signals["total"]:
            pages.append(client.get(f"/api/signals?limit=200&offset={200 * len(pages)}").json)
        delivered = [s["deliveryId"] for p in pages for s in p["data"]]
        # None lost, none duplicated.
        assert sorted(delivered) == sorted([*results, "late"])
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("point, outcome", [("before-write", "created"), ("after-write", "existing")])
def test_a_work_horse_killed_mid_grouped_webhook_leaves_one_more_signal_and_the_right_count(
        client, settings, rq_queue, redis_url, tmp_path, point, outcome):
    """The delivery joins an open group (issue 14): after the kill and the retry, exactly one signal
    was added and the group's issue counts 2."""
    opened = client.post("/api/signals", json={
        "source": "sentry", "type": "created", "severity": "high", "payload": {"message": "first"},
        "fingerprint": "sentry:issue:1170820242"}).json["data"]["issue"]
    (tmp_path / point).touch()  # the job holds at this checkpoint (tests/signal_job_hold.py)
    body = fixture_bytes("sentry/issue.created.json")
    r = client.post("/api/signals/sentry", body=body, headers=sentry_headers(body, "issue"), auth=False)
    assert r.status_code == 202
    (job_id,) = rq_queue.job_ids
    worker = start_held_worker(settings, redis_url, tmp_path)
    kill_horse_at(worker, tmp_path, point)
    job = rq_queue.fetch_job(job_id)
    assert job is not None and job.is_finished
    result = job.latest_result().return_value
    assert result["status"] == outcome and result["issueId"] == opened["id"]
    assert totals(client) == (2, 1)
    assert client.get(f"/api/issues/{opened['id']}").json["data"]["signalCount"] == 2

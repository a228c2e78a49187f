"""Issue 18: Loop on a Sentinel-managed master (data and queue: one redis+sentinel:// URL). The
master is SIGKILLed during a webhook flood and a dispatch load: the API answers 503, never 500,
recovers by itself once Sentinel promoted the replica, every acknowledged webhook becomes exactly
one signal and no issue is claimed twice."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from rq import SimpleWorker

from api.app import create_app
from loop.clock import SystemClock
from loop.runtime import from_settings
from loop.settings import Settings
from loop.store.signals import SIGNAL_FIELDS
from tests.cluster_server import SentinelSetup
from tests.conftest import API_KEY, Client
from tests.fixtures.webhooks import fixture_bytes, github_headers
from workers.runner import queue_for
from workers.signals import _base_settings

BASE = json.loads(fixture_bytes("github/issues.opened.json"))
ISSUES = 150


@pytest.fixture
def sentinel(monkeypatch: pytest.MonkeyPatch) -> Iterator[SentinelSetup]:
    setup = SentinelSetup().start()
    monkeypatch.setenv("REDIS_URL", setup.url)
    monkeypatch.setenv("LOOP_API_KEY", API_KEY)
    monkeypatch.delenv("LOOP_QUEUE_URL", raising=False)
    _base_settings.cache_clear()
    yield setup
    _base_settings.cache_clear()
    setup.stop()


def body(n: int) -> bytes:
    payload = json.loads(json.dumps(BASE))
    payload["issue"]["number"] = 10_000 + n
    payload["issue"]["title"] = f"flood {n}"
    return json.dumps(payload).encode()


@pytest.mark.sentinel
@pytest.mark.slow
def test_a_master_killed_under_webhooks_and_claims_loses_no_acknowledged_webhook_and_claims_nothing_twice(
        sentinel: SentinelSetup) -> None:
    settings = Settings(api_key=API_KEY, redis_url=sentinel.url, namespace="failover", queue_name="failover",
                        github_webhook_secrets=("gh-secret",), webhook_retry_intervals=(0, 0))
    loop = from_settings(settings)
    client = Client(create_app(loop, SystemClock(), settings))
    for i in range(ISSUES):
        assert client.post("/api/issues", json={"title": f"task {i}", "type": "task", "status": "todo"}).status_code == 201
    acked: list[int] = []
    refused: list[int] = []
    answers: list[str] = []
    claimed: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()
    counter = iter(range(1_000_000))
    lock = threading.Lock()

    def flood() -> None:
        while not stop.is_set():
            with lock:
                n = next(counter)
            data = body(n)
            r = client.post("/api/signals/github", body=data, headers=github_headers(data, "issues", f"f-{n}"),
                            auth=False)
            statuses.append(r.status_code)
            if r.status_code == 202:
                # "duplicate" too: redis-py may re-send an accept whose reply the dying master never sent.
                answers.append(r.json["data"]["status"])
                acked.append(n)
            else:
                refused.append(n)

    def claim() -> None:
        while not stop.is_set():
            r = client.get("/api/dispatch/next")
            statuses.append(r.status_code)
            if r.status_code == 200:
                claimed.append(r.json["data"]["issue"]["id"])
            time.sleep(0.01)

    threads = [threading.Thread(target=flood) for _ in range(3)] + [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    sentinel.kill_master()
    killed, before = time.monotonic(), len(statuses)

    def recovered_now() -> bool:  # the last 20 answers after the kill were served (by the promoted replica)
        after = statuses[before:]
        return len(after) >= 20 and 503 in after and all(s in (200, 202, 204) for s in after[-20:])

    while time.monotonic() - killed < 30 and not recovered_now():
        time.sleep(0.2)
    recovered = time.monotonic() - killed
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join(30)
    assert set(statuses) <= {200, 202, 204, 503}, sorted(set(statuses))
    assert 503 in statuses and recovered < 20
    assert len(claimed) == len(set(claimed)), "an issue was claimed twice"
    assert set(answers) <= {"queued", "duplicate"}, sorted(set(answers))
    # The provider retries what got a 503: each is queued now, or had in fact been committed.
    for n in refused:
        data = body(n)
        r = client.post("/api/signals/github", body=data, headers=github_headers(data, "issues", f"f-{n}"),
                        auth=False)
        assert r.status_code == 202 and r.json["data"]["status"] in ("queued", "duplicate"), r.json
    queue = queue_for(settings)
    SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")
    delivered = [s["deliveryId"] for s in loop.get_rows(
        "signal", SIGNAL_FIELDS, loop.r.zrange(loop.keys.signal_index(), 0, -1))]
    # Every delivery, acknowledged at once or on the retry, became exactly one signal.
    assert len(delivered) == len(set(delivered)), "a delivery became two signals"
    assert sorted(delivered) == sorted(f"f-{n}" for n in [*acked, *refused])

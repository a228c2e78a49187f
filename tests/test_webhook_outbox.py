"""Issue 18: with RQ on its own Redis (LOOP_QUEUE_URL) a webhook is recorded in the namespace's
outbox first and enqueued on RQ's Redis after; the worker's relay enqueues what a crash in
between left behind, so an acknowledged delivery becomes exactly one signal."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import redis

from api.app import create_app
from loop.clock import FrozenClock
from loop.runtime import Loop, build
from loop.settings import Settings
from loop.signals.intake import Intake
from loop.tunables import OUTBOX_RELAY_AFTER_SECONDS
from tests.conftest import Client
from tests.fixtures.webhooks import drain, fixture_bytes, github_headers, open_queue
from tests.redis_server import RedisProcess, spawn_redis
from workers.outbox import relay_outbox
from workers.signals import _base_settings

BODY = fixture_bytes("github/issues.opened.json")


@pytest.fixture(scope="module")
def queue_redis() -> Iterator[RedisProcess]:
    proc = spawn_redis()
    yield proc
    proc.stop()


@pytest.fixture
def settings(settings: Settings, queue_redis: RedisProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    separate = dataclasses.replace(settings, queue_url=queue_redis.url, webhook_retry_intervals=(0, 0))
    # The job (run in-process by drain) reads its Redis URLs from the environment, as a worker does.
    monkeypatch.setenv("LOOP_API_KEY", separate.api_key)
    monkeypatch.setenv("REDIS_URL", separate.redis_url or "")
    monkeypatch.setenv("LOOP_QUEUE_URL", queue_redis.url)
    _base_settings.cache_clear()
    yield separate
    _base_settings.cache_clear()


@pytest.fixture
def rq_queue(settings: Settings):  # type: ignore[no-untyped-def]
    yield from open_queue(settings)


def post(client: Client, delivery: str = "d-1") -> tuple[int, str]:
    r = client.post("/api/signals/github", body=BODY, headers=github_headers(BODY, "issues", delivery), auth=False)
    return r.status_code, r.json["data"]["status"]


def outbox(store: Loop) -> dict[str, str]:
    return store.r.hgetall(store.keys.webhook_outbox())


def signals(store: Loop) -> int:
    return int(store.r.zcard(store.keys.signal_index()))


class Crash(BaseException):
    """The API process dying between the two steps (not an error anyone handles)."""


def test_an_accepted_webhook_is_recorded_then_enqueued_on_the_queue_redis_only(client, store, rq_queue):
    assert store.settings.separate_queue
    assert post(client) == (202, "queued")
    assert rq_queue.count == 1  # on LOOP_QUEUE_URL's Redis
    assert not store.r.exists(rq_queue.key)  # nothing of RQ's on the data Redis
    assert outbox(store) == {}  # cleared once the job exists
    assert post(client) == (202, "duplicate")
    assert rq_queue.count == 1


def test_a_crash_between_recording_and_enqueueing_is_relayed_once_and_becomes_one_signal(
        client, store, rq_queue, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch):
    def crash(self: Intake, job_id: str, spec: object) -> bool:
        raise Crash
    with monkeypatch.context() as m, pytest.raises(Crash):
        m.setattr(Intake, "relay_one", crash)
        post(client)
    assert rq_queue.count == 0 and len(outbox(store)) == 1
    # The provider retries the unanswered delivery: already accepted, so no second entry.
    assert post(client) == (202, "duplicate")
    assert relay_outbox(store) == 0  # too fresh: its own request may still enqueue it
    clock.advance(OUTBOX_RELAY_AFTER_SECONDS * 1000 + 1)
    assert relay_outbox(store) == 1
    assert relay_outbox(store) == 0 and outbox(store) == {}
    assert rq_queue.count == 1
    drain(rq_queue)
    assert signals(store) == 1


def test_the_request_and_the_relay_racing_enqueue_the_job_once(store, rq_queue, settings):
    intake = Intake(store)
    spec = {"provider": "github", "deliveryId": "d-9", "namespace": settings.namespace}
    assert intake.relay_one("job-1", spec) is True
    assert intake.relay_one("job-1", spec) is False
    assert rq_queue.count == 1


def test_a_queue_redis_down_after_recording_still_acknowledges_and_the_relay_enqueues_later(
        store, settings, clock: FrozenClock) -> None:
    down = dataclasses.replace(settings, queue_url="redis://127.0.0.1:1/0")
    loop = build(store.raw, down, clock)
    client = Client(create_app(loop, clock, down))
    assert post(client, "d-down") == (202, "queued")
    assert len(outbox(store)) == 1
    clock.advance(OUTBOX_RELAY_AFTER_SECONDS * 1000 + 1)
    with pytest.raises(redis.ConnectionError):
        relay_outbox(loop)  # still down: the entry stays
    assert len(outbox(store)) == 1


def test_readiness_counts_the_queue_on_rqs_own_redis(client, store, settings, rq_queue):
    from loop.health import readiness

    assert post(client, "d-ready") == (202, "queued")
    _problems, report = readiness(store, settings.queue_name)
    assert report["webhooks"]["queued"] == 1
    assert report["webhooks"]["oldestAgeSeconds"] is not None

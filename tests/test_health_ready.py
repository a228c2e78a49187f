"""``GET /health/ready`` tells the truth about workers, the webhook queue, lease sweeps and Redis
memory, with its 503 rule; the start-up check warns about eviction and missing persistence."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq import Queue, Worker

from api.app import create_app
from loop.clock import FrozenClock, SystemClock
from loop.health import check_redis_config
from loop.runtime import store_from_settings
from tests.conftest import Client
from tests.fixtures.webhooks import fixture_bytes, github_headers, purge
from tests.redis_server import RedisProcess, spawn_redis
from workers.leases import expire_leases

BODY = fixture_bytes("github/issues.opened.json")


@pytest.fixture
def clock() -> FrozenClock:
    # RQ stamps heartbeats and enqueue times with the real time: start the frozen clock there.
    return FrozenClock(SystemClock().now_ms())


@pytest.fixture
def rq_conn(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def worker(settings: Any, rq_conn: redis.Redis) -> Iterator[Worker]:
    """A registered, heartbeating RQ worker on the test queue (not running jobs)."""
    queue = Queue(settings.queue_name, connection=rq_conn)
    w = Worker([queue], connection=rq_conn)
    w.register_birth()
    w.heartbeat()
    yield w
    w.register_death()
    purge(queue)


def _ready(client: Client) -> Any:
    r = client.get("/health/ready")
    assert r.status_code in (200, 503), r.text
    return r


def test_ready_is_200_with_every_section_when_a_worker_beats_and_leases_are_swept(client, store, worker):
    expire_leases(store)
    r = _ready(client)
    assert r.status_code == 200, r.json["problems"]
    body = r.json
    assert body["ok"] is True and body["problems"] == [] and body["service"] == "loop-api"
    assert body["workers"]["live"] == 1
    (listed,) = body["workers"]["list"]
    assert listed["name"] == worker.name and 0 <= listed["heartbeatAgeSeconds"] < 60
    assert body["webhooks"] == {"queue": store.settings.queue_name, "queued": 0, "oldestAgeSeconds": None,
                                "retrying": 0, "failed": 0}
    assert body["leases"] == {"lastSweepAgeSeconds": 0.0, "sweepOverdue": False, "expiredUnswept": 0}
    assert body["redis"]["status"] == "ok" and body["redis"]["usedMemory"] > 0
    assert {"maxmemory", "memoryRatio", "maxmemoryPolicy", "role", "aofEnabled"} <= set(body["redis"])


def test_ready_is_503_naming_the_missing_worker_and_the_never_run_sweep(client, store):
    r = _ready(client)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json["ok"] is False
    assert r.json["problems"] == [f"workers: no live worker on queue {store.settings.queue_name}",
                                  "leases: never swept"]
    assert r.json["workers"] == {"live": 0, "list": []}
    assert client.get("/health").status_code == 200  # the load balancer's check stays green


def test_a_sweep_older_than_a_minute_is_overdue(client, store, clock, worker):
    expire_leases(store)
    clock.advance(61)
    r = _ready(client)
    assert r.status_code == 503
    assert r.json["problems"] == ["leases: periodic sweep overdue"]
    assert r.json["leases"]["lastSweepAgeSeconds"] == 61.0 and r.json["leases"]["sweepOverdue"] is True


def test_the_webhook_queue_reports_depth_and_oldest_age_and_a_stale_one_is_a_problem(client, store, clock, worker):
    expire_leases(store)
    for delivery in ("q-1", "q-2"):
        body = BODY.replace(b"{", b'{"delivery": "%s", ' % delivery.encode(), 1)  # one body twice is a replay
        r = client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", delivery),
                        auth=False)
        assert r.status_code == 202
    assert _ready(client).json["webhooks"]["queued"] == 2
    clock.advance(301)
    expire_leases(store)  # keep the sweep fresh: only the queue is late
    r = _ready(client)
    assert r.status_code == 503
    assert r.json["webhooks"]["oldestAgeSeconds"] > 300
    assert r.json["problems"] == [f"webhooks: oldest queued job waited {r.json['webhooks']['oldestAgeSeconds']:.0f} s"]


def test_failed_jobs_are_counted(client, store, worker, rq_conn):
    expire_leases(store)
    queue = Queue(store.settings.queue_name, connection=rq_conn)
    job = queue.enqueue("builtins.len", 1)
    queue.failed_job_registry.add(job, ttl=60)
    assert _ready(client).json["webhooks"]["failed"] == 1


@pytest.fixture
def server() -> Iterator[RedisProcess]:
    proc = spawn_redis()
    yield proc
    proc.stop()


def test_memory_near_maxmemory_is_a_problem_and_ready_reports_redis_refusing_writes(settings, clock, server):
    s = dataclasses.replace(settings, redis_url=server.url)
    store = store_from_settings(s)
    store.clock = clock
    client = Client(create_app(store, clock, s))
    admin = redis.Redis(port=server.port, decode_responses=True)
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", int(used / 0.95))
    r = _ready(client)
    assert r.status_code == 503
    assert any(p.startswith("redis: memory at") for p in r.json["problems"])
    assert r.json["redis"]["maxmemory"] == int(used / 0.95) and r.json["redis"]["memoryRatio"] >= 0.9
    admin.config_set("maxmemory", 1)
    r = _ready(client)
    assert r.status_code == 503 and r.json["problems"] == ["redis: out of memory (maxmemory reached)"]
    admin.config_set("maxmemory", 0)


def test_the_start_up_check_warns_about_an_evicting_policy_no_persistence_and_small_compact_hashes(
        settings, server, caplog):
    admin = redis.Redis(port=server.port, decode_responses=True)
    admin.config_set("maxmemory-policy", "allkeys-lru")  # spawn_redis runs with no AOF and no save points
    admin.config_set("hash-max-ziplist-value", "64")  # Redis's default (7.x: an alias of the listpack name)
    with caplog.at_level(logging.WARNING, logger="loop.health"):
        store_from_settings(dataclasses.replace(settings, redis_url=server.url))
    messages = [rec.getMessage() for rec in caplog.records if rec.name == "loop.health"]
    assert len(messages) == 3
    assert "maxmemory-policy is allkeys-lru" in messages[0]
    assert "no persistence" in messages[1]
    assert "hash-max-listpack-value is 64" in messages[2] and "hash-max-listpack-value 1024" in messages[2]


def test_the_start_up_check_is_quiet_for_noeviction_with_rdb_save_points(server, caplog):
    admin = redis.Redis(port=server.port, decode_responses=True)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("save", "3600 1")
    admin.config_set("hash-max-ziplist-value", "1024")  # the recommended value, by its 6.2 name
    with caplog.at_level(logging.WARNING, logger="loop.health"):
        assert check_redis_config(admin) == []
    assert not [rec for rec in caplog.records if rec.name == "loop.health"]

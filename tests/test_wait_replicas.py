"""Issue 18: LOOP_WAIT_REPLICAS: an acknowledged write is one that many replicas hold (Redis WAIT);
when they do not confirm in time, the answer is 503, never a 2xx."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from api.app import create_app
from loop.clock import FrozenClock
from loop.runtime import build
from loop.settings import Settings
from loop.store import connect
from tests.cluster_server import _spawn, _wait
from tests.conftest import API_KEY, Client
from tests.redis_server import free_port


@pytest.fixture(scope="module")
def primary_and_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    workdir = str(tmp_path_factory.mktemp("replica"))
    master_port, replica_port = free_port(), free_port()
    procs = [_spawn(master_port, workdir, "--repl-diskless-sync-delay", "0")]
    procs.append(_spawn(replica_port, workdir, "--replicaof", "127.0.0.1", str(master_port)))
    replica = redis.Redis(port=replica_port, decode_responses=True)
    _wait(lambda: replica.info("replication").get("master_link_status") == "up", "the replica's sync")
    yield master_port, procs[1]
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def test_loop_wait_replicas_is_a_bounded_integer_named_when_wrong() -> None:
    assert Settings.from_env({"LOOP_API_KEY": "k", "LOOP_WAIT_REPLICAS": "1"}).wait_replicas == 1
    assert Settings.from_env({"LOOP_API_KEY": "k"}).wait_replicas == 0
    from loop.errors import ConfigError
    with pytest.raises(ConfigError, match="LOOP_WAIT_REPLICAS"):
        Settings.from_env({"LOOP_API_KEY": "k", "LOOP_WAIT_REPLICAS": "-1"})


def test_a_write_is_acknowledged_once_a_replica_holds_it_and_is_503_when_none_confirms(
        primary_and_replica: tuple[int, subprocess.Popen[bytes]]) -> None:
    port, replica = primary_and_replica
    settings = Settings(api_key=API_KEY, redis_url=f"redis://127.0.0.1:{port}/0", namespace="wait", wait_replicas=1)
    store = build(connect(settings.redis_url or ""), settings, FrozenClock())
    client = Client(create_app(store, store.clock, settings))
    r = client.post("/api/issues", json={"title": "kept", "type": "task", "status": "todo"})
    assert r.status_code == 201, r.text
    # Two replicas are wanted but only one exists: the write cannot be confirmed.
    strict = dataclasses.replace(settings, wait_replicas=2)
    strict_client = Client(create_app(build(store.raw, strict, store.clock), store.clock, strict))
    started = time.monotonic()
    r = strict_client.post("/api/issues", json={"title": "unconfirmed", "type": "task", "status": "todo"})
    assert r.status_code == 503 and "LOOP_WAIT_REPLICAS" in r.json["error"] and r.headers["Retry-After"]
    assert time.monotonic() - started < 3  # bounded by REPLICA_WAIT_MS
    assert client.get("/api/issues?limit=5").status_code == 200  # reads never wait

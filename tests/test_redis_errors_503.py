"""Redis that cannot serve answers 503 with Retry-After on every route, within a bounded time.

Each test runs on its own redis-server (``spawn_redis``) made full (maxmemory + noeviction),
read-only (REPLICAOF), busy (a long script) or silent (SIGSTOP), with the store built by
``loop.runtime.store_from_settings``: the client options under test are the production ones.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from api.app import create_app
from loop.redis_errors import unavailable_reason
from loop.runtime import store_from_settings
from loop.store import RedisStore
from loop.tunables import REDIS_TIMEOUT_SECONDS
from tests.conftest import Client, keys_of
from tests.fixtures.webhooks import fixture_bytes, github_headers
from tests.redis_server import RedisProcess, free_port, spawn_redis

BODY = fixture_bytes("github/issues.opened.json")
ISSUE = {"title": "t", "type": "task", "status": "todo"}


@pytest.fixture
def server() -> Iterator[RedisProcess]:
    proc = spawn_redis()
    try:
        yield proc
    finally:
        if proc.proc is not None:
            os.kill(proc.proc.pid, signal.SIGCONT)  # a test that failed while it was stopped
        proc.stop()


@pytest.fixture
def own(server: RedisProcess, settings: Any, clock: Any) -> Iterator[tuple[RedisStore, Client, redis.Redis]]:
    s = dataclasses.replace(settings, redis_url=server.url)
    store = store_from_settings(s)
    store.clock = clock
    admin = redis.Redis(port=server.port, decode_responses=True)
    yield store, Client(create_app(store, clock, s)), admin
    admin.close()


def _assert_503(r: Any, reason_part: str) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "5"
    assert r.json["error"] == "Redis is unavailable; retry later"
    assert reason_part in r.json["details"]["redis"][0]


def _webhook(client: Client, delivery: str) -> Any:
    return client.post("/api/signals/github", body=BODY, headers=github_headers(BODY, "issues", delivery),
                       auth=False)


def test_a_full_redis_with_noeviction_answers_503_with_retry_after_and_writes_nothing(own):
    store, client, admin = own
    issue = client.post("/api/issues", json=ISSUE).json["data"]
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    before = keys_of(store)
    try:
        _assert_503(client.post("/api/issues", json=ISSUE), "out of memory")
        _assert_503(client.patch(f"/api/issues/{issue['id']}", json={"title": "u"}), "out of memory")
        _assert_503(_webhook(client, "oom-1"), "out of memory")
        health = client.get("/health")
        assert health.status_code == 503 and health.json["redis"].startswith("out of memory")
        assert client.get(f"/api/issues/{issue['id']}").status_code == 200  # reads still work
        assert keys_of(store) == before
    finally:
        admin.config_set("maxmemory", 0)
    assert client.post("/api/issues", json=ISSUE).status_code == 201
    assert client.get("/health").status_code == 200


def test_a_failed_over_read_only_replica_answers_503_on_writes(own):
    store, client, admin = own
    issue = client.post("/api/issues", json=ISSUE).json["data"]
    admin.replicaof("127.0.0.1", free_port())  # nobody there: stays a read-only replica, keeps its data
    before = keys_of(store)
    try:
        _assert_503(client.post("/api/issues", json=ISSUE), "read-only")
        _assert_503(_webhook(client, "ro-1"), "read-only")
        assert client.get("/health").json["redis"].startswith("read-only")
        assert client.get(f"/api/issues/{issue['id']}").status_code == 200  # plain reads still work
        _assert_503(client.get("/api/issues"), "read-only")  # the list script writes scratch bitmaps
        assert keys_of(store) == before
    finally:
        admin.replicaof("NO", "ONE")
    assert client.post("/api/issues", json=ISSUE).status_code == 201


def test_a_redis_busy_with_a_long_script_answers_503(own):
    store, client, admin = own
    admin.config_set("busy-reply-threshold", 50)
    runner = redis.Redis(port=admin.connection_pool.connection_kwargs["port"])
    spin = threading.Thread(target=lambda: pytest.raises(redis.ResponseError, runner.eval, "while true do end", 0))
    spin.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                admin.ping()
                time.sleep(0.02)
            except redis.ResponseError:
                break  # BUSY: the script is past the threshold
        _assert_503(client.post("/api/issues", json=ISSUE), "busy")
        _assert_503(client.get("/api/issues"), "busy")
        assert client.get("/health").json["redis"].startswith("busy")
    finally:
        admin.script_kill()
        spin.join(10)


def test_a_paused_redis_answers_503_within_the_deadline_on_every_route_and_root_does_not_wait(own, server):
    store, client, admin = own
    issue = client.post("/api/issues", json=ISSUE).json["data"]
    assert client.get("/health").status_code == 200  # the pool holds a live connection
    calls = {
        "list": lambda: client.get("/api/issues"),
        "create (MULTI)": lambda: client.post("/api/issues", json=ISSUE),
        "update (WATCH/MULTI)": lambda: client.patch(f"/api/issues/{issue['id']}", json={"title": "u"}),
        "dispatch (Lua)": lambda: client.get("/api/dispatch/next"),
        "webhook": lambda: _webhook(client, "paused-1"),
        "health": lambda: client.get("/health"),
        "ready": lambda: client.get("/health/ready"),
    }
    results: dict[str, tuple[int, float]] = {}

    def run(name: str) -> None:
        t0 = time.monotonic()
        r = calls[name]()
        results[name] = (r.status_code, time.monotonic() - t0)

    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=run, args=(name,)) for name in calls]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        root = client.get("/")
        assert root.status_code == 200 and time.monotonic() - t0 < 0.5
        for t in threads:
            t.join(30)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert {name: code for name, (code, _) in results.items()} == {name: 503 for name in calls}
    # One command timing out takes REDIS_TIMEOUT_SECONDS (5 s); a second attempt would take twice
    # that. The margin between is for a loaded 2-core box (CI once saw 7.6 s, load ~10).
    slow = {name: round(s, 1) for name, (_, s) in results.items() if s >= 1.8 * REDIS_TIMEOUT_SECONDS}
    assert not slow, f"answered after the deadline: {slow}"
    assert client.post("/api/issues", json=ISSUE).status_code == 201  # back by itself


def test_a_misconf_or_loading_redis_gives_503_and_a_wrongtype_bug_gives_500(client, store, monkeypatch):
    def fail(exc: Exception) -> Any:
        def raiser(*a: Any, **k: Any) -> Any:
            raise exc
        return raiser

    misconf = redis.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable")
    monkeypatch.setattr(store.issues, "create", fail(misconf))
    _assert_503(client.post("/api/issues", json=ISSUE), "MISCONF")
    monkeypatch.setattr(store.issues, "create", fail(redis.BusyLoadingError("Redis is loading the dataset")))
    _assert_503(client.post("/api/issues", json=ISSUE), "loading")
    wrongtype = redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    monkeypatch.setattr(store.issues, "create", fail(wrongtype))
    r = client.post("/api/issues", json=ISSUE)
    assert r.status_code == 500 and "Retry-After" not in r.headers


@pytest.mark.parametrize("exc, reason", [
    (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "out of memory"),
    (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), "read-only"),
    (redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"), "loading"),
    (redis.ResponseError("BUSY Redis is busy running a script."), "busy"),
    (redis.ResponseError("MASTERDOWN Link with MASTER is down"), "lost its master"),
    (redis.ResponseError("Command # 1 (SET k v) of pipeline caused error: MISCONF Errors writing to disk"),
     "MISCONF"),
    (redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'. script: abc, on @user_script:3."),
     "out of memory"),
    (redis.TimeoutError("Timeout reading from socket"), "timeout"),
    (redis.ConnectionError("Connection refused"), "unreachable"),
])
def test_each_redis_server_state_error_is_named_as_unavailable(exc, reason):
    assert reason in (unavailable_reason(exc) or "")


@pytest.mark.parametrize("exc", [
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    redis.ResponseError("ERR unknown command 'FOO'"),
    redis.ResponseError("BUSYGROUP Consumer Group name already exists"),
    redis.exceptions.NoScriptError("No matching script."),
    redis.DataError("Invalid input"),
])
def test_errors_that_are_bugs_or_bad_input_are_not_unavailable(exc):
    assert unavailable_reason(exc) is None


@pytest.mark.parametrize("error, abandoned", [(redis.TimeoutError("silent"), False),
                                              (redis.ConnectionError("refused"), True)])
def test_a_503_behind_a_silent_redis_does_not_wait_a_second_timeout_to_forget_its_idempotency_key(
        client, store, monkeypatch, error, abandoned):
    forgotten: list[str] = []
    real_abandon = store.idempotency.abandon
    monkeypatch.setattr(store.idempotency, "abandon", lambda key: (forgotten.append(key), real_abandon(key)))

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(store.issues, "create", fail)
    r = client.post("/api/issues", json=ISSUE, headers={"Idempotency-Key": "k-silent"})
    assert r.status_code == 503 and r.headers["Retry-After"]
    # A silent Redis: no second command (it would wait out another socket timeout); the in-flight
    # marker expires by itself. A refused connection fails fast: the key is forgotten at once.
    assert bool(forgotten) is abandoned
    monkeypatch.undo()
    again = client.post("/api/issues", json=ISSUE, headers={"Idempotency-Key": "k-silent"})
    assert again.status_code == (201 if abandoned else 409)

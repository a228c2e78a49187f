"""Shared fixtures: a real Redis, a namespaced store per test, an API client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest
from hypothesis import settings as hypothesis_settings

from api.app import create_app
from loop.clock import FrozenClock
from loop.connection import AnyRedis
from loop.runtime import Loop, build
from loop.settings import Settings
from loop.store import connect
from tests.redis_server import choose_url, claim_db, spawn_redis

# CI replays the same examples every run (a red CI is then reproducible); local runs explore.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

API_KEY = "loop_test-api-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


#: Set by tests/test_cluster_suite.py to run the suite's data on the Redis Cluster it started
#: (``redis+cluster://...``), with RQ on a separate redis-server (``LOOP_TEST_QUEUE_URL``), as a
#: cluster deployment runs.
CLUSTER_URL = os.environ.get("LOOP_TEST_CLUSTER_URL")


@pytest.fixture(scope="session")
def deployment() -> Iterator[tuple[str, str | None]]:
    """(REDIS_URL, LOOP_QUEUE_URL) of the run."""
    if CLUSTER_URL:
        queue = os.environ["LOOP_TEST_QUEUE_URL"]
        # Jobs run in-process (a burst worker) find their data Redis as a worker does: in the environment.
        os.environ.update(REDIS_URL=CLUSTER_URL, LOOP_QUEUE_URL=queue, LOOP_API_KEY=API_KEY)
        yield CLUSTER_URL, queue
        return
    base, proc = choose_url()
    try:
        yield claim_db(base), None
    finally:
        if proc is not None:
            proc.stop()


@pytest.fixture(scope="session")
def redis_url(deployment: tuple[str, str | None]) -> str:
    return deployment[0]


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> AnyRedis:
    return connect(redis_url)


@pytest.fixture
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(namespace: str, deployment: tuple[str, str | None]) -> Settings:
    redis_url, queue_url = deployment
    return Settings(api_key=API_KEY, redis_url=redis_url, queue_url=queue_url, namespace=namespace,
                    max_body_bytes=64 * 1024,
                    github_webhook_secrets=("gh-secret",), sentry_client_secrets=("sentry-secret",),
                    posthog_webhook_secrets=("posthog-secret",), queue_name=f"loop-{namespace}")


@pytest.fixture
def render_prompts() -> bool:
    """Whether dispatch renders a prompt for each claim; a module that wants none overrides this."""
    return True


@pytest.fixture
def store(redis_client: AnyRedis, settings: Settings, clock: FrozenClock, render_prompts: bool) -> Iterator[Loop]:
    s = build(redis_client, settings, clock, prompts=render_prompts)
    try:
        yield s
    finally:
        s.delete_namespace()


@pytest.fixture
def private_store() -> Iterator[Loop]:
    """A store on a throwaway redis-server, for SCRIPT FLUSH and MONITOR (which must not
    disturb, nor be disturbed by, anyone else)."""
    proc = spawn_redis()
    try:
        client = connect(proc.url)
        yield build(client, Settings(namespace=f"t-{uuid.uuid4().hex[:8]}"), FrozenClock())
        client.close()
    finally:
        proc.stop()


class Client(falcon.testing.TestClient):
    """TestClient that sends the test API key unless told otherwise."""

    def request(self, method: str, path: str, *args: Any, auth: bool = True, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers.setdefault("Authorization", AUTH["Authorization"])
        return self.simulate_request(method, path, *args, headers=headers, **kwargs)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def app(store: Loop, clock: FrozenClock, settings: Settings) -> falcon.App:
    return create_app(store, clock, settings)


@pytest.fixture
def client(app: falcon.App) -> Client:
    return Client(app)


def keys_of(store: Loop) -> set[str]:
    """Every key of the test's namespace (for 'nothing was written' assertions)."""
    return set(store.r.scan_iter(match=store.keys.all_pattern(), count=1000))

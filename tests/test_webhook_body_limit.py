"""Issue 10.14: webhook routes have their own, larger body limit (``LOOP_WEBHOOK_MAX_BODY_BYTES``,
default 25 MiB: GitHub sends up to 25 MB and never retries a 413), chosen by the routed
resource's ``Op(webhook=True)``, never by path prefix; every other route keeps ``LOOP_MAX_BODY_BYTES``."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import falcon.testing
import orjson
import pytest

from api.app import create_app
from loop.errors import ConfigError
from loop.settings import DEFAULT_WEBHOOK_MAX_BODY_BYTES, Settings
from tests.conftest import API_KEY, Client, keys_of
from tests.fixtures.webhooks import github_headers, open_queue

WEBHOOK_LIMIT = 256 * 1024  # above the test settings' 64 KiB general limit


@pytest.fixture
def rq_queue(settings):
    yield from open_queue(settings)


@pytest.fixture
def big_client(store, clock, settings) -> Client:
    return Client(create_app(store, clock, dataclasses.replace(settings, webhook_max_body_bytes=WEBHOOK_LIMIT)))


def _padded(size: int) -> bytes:
    head, tail = b'{"action": "opened", "pad": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_the_webhook_limit_defaults_to_25_mib_and_is_configurable_within_bounds():
    assert Settings.from_env({"LOOP_API_KEY": "k"}).webhook_max_body_bytes == DEFAULT_WEBHOOK_MAX_BODY_BYTES == 25 << 20
    assert Settings.from_env({"LOOP_API_KEY": "k", "LOOP_WEBHOOK_MAX_BODY_BYTES": "2048"}).webhook_max_body_bytes == 2048
    for bad in ("0", "abc", str(512 << 20)):
        with pytest.raises(ConfigError, match="LOOP_WEBHOOK_MAX_BODY_BYTES"):
            Settings.from_env({"LOOP_API_KEY": "k", "LOOP_WEBHOOK_MAX_BODY_BYTES": bad})


@pytest.mark.parametrize("path", ["/api/signals/github", "//api/signals/github", "/api/signals/github/"])
def test_a_webhook_body_over_the_general_limit_but_within_the_webhook_limit_is_queued(
        big_client, settings, rq_queue, path):
    body = _padded(settings.max_body_bytes * 3)
    r = big_client.post(path, body=body, headers=github_headers(body, "issues", "big-1"), auth=False)
    assert (r.status_code, r.json["data"]["status"]) == (202, "queued")
    assert rq_queue.jobs[0].args[0]["body"].encode() == body


def test_a_webhook_body_over_the_webhook_limit_is_413_naming_it_and_stores_nothing(big_client, store, rq_queue):
    before = keys_of(store)
    body = _padded(WEBHOOK_LIMIT + 1)
    r = big_client.post("/api/signals/github", body=body, headers=github_headers(body, "issues", "big-2"), auth=False)
    assert (r.status_code, r.json) == (413, {"error": f"Request body exceeds the limit of {WEBHOOK_LIMIT} bytes"})
    assert keys_of(store) == before and rq_queue.count == 0


def test_a_chunked_webhook_body_is_read_up_to_the_webhook_limit(big_client, settings, rq_queue):
    body = _padded(settings.max_body_bytes * 2)
    env = falcon.testing.create_environ(path="/api/signals/github", method="POST",
                                        headers=github_headers(body, "issues", "big-3"))
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"], env["wsgi.input_terminated"] = io.BytesIO(body), True
    start = falcon.testing.StartResponseMock()
    out = b"".join(big_client.app(env, start))
    assert start.status.startswith("202"), out
    assert orjson.loads(out)["data"]["status"] == "queued"


@pytest.mark.parametrize("path", ["/api/signals", "/api/issues"])
def test_other_routes_keep_the_general_limit_even_under_the_webhook_path_prefix(big_client, store, settings, path):
    before = keys_of(store)
    body = _padded(settings.max_body_bytes * 3)
    r = big_client.post(path, body=body, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json) == (413, {"error": f"Request body exceeds the limit of {settings.max_body_bytes} bytes"})
    assert keys_of(store) == before


def test_an_idempotency_key_on_a_webhook_reads_the_body_with_the_webhook_limit(big_client, settings, rq_queue):
    body = _padded(settings.max_body_bytes * 2)
    headers: dict[str, Any] = {**github_headers(body, "issues", "big-4"), "Idempotency-Key": "k1",
                               "Authorization": f"Bearer {API_KEY}"}
    r = big_client.post("/api/signals/github", body=body, headers=headers, auth=False)
    assert r.status_code == 202, r.text

"""SDK transport behaviour against a tiny scripted HTTP stub: retries, backoff, Idempotency-Key,
typed errors and configuration. (Everything else is tested against a live Loop.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from loop.client import (
    AuthError,
    ConflictError,
    LoopClient,
    LoopClientError,
    LoopConnectionError,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnprocessableError,
    ValidationError,
    paginate,
)
from loop.client.resources import Page
from tests.redis_server import free_port


class Stub:
    """Answers each request with the next scripted (status, body, headers); records requests."""

    def __init__(self, keep_alive: bool = False) -> None:
        self.script: list[tuple[int, Any, dict[str, str]]] = []
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                stub.requests.append({"method": self.command, "path": self.path,
                                      "headers": dict(self.headers.items()),
                                      "body": json.loads(raw) if raw else None,
                                      "peer": self.client_address[1]})
                status, body, headers = stub.script.pop(0) if stub.script else (200, {"data": {}}, {})
                if status == 0:  # drop the connection after reading the request
                    self.close_connection = True
                    return
                data = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if "X-Stub-Close" in headers:
                    self.close_connection = True  # an idle keep-alive connection the server drops

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def then(self, status: int, body: Any = None, **headers: str) -> Stub:
        self.script.append((status, body, {k.replace("_", "-"): v for k, v in headers.items()}))
        return self


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make(stub: Stub, sleeps: list[float], **kw: Any) -> LoopClient:
    kw.setdefault("max_retries", 3)
    return LoopClient(stub.url, "k", sleep=sleeps.append, jitter=0, **kw)


def test_a_503_then_success_is_retried_with_exponential_backoff(stub: Stub, sleeps: list[float]) -> None:
    stub.then(503, {"error": "Redis is unavailable"}).then(502, "bad gateway").then(200, {"data": {"id": "i1"}})
    assert make(stub, sleeps).issues.get("i1") == {"id": "i1"}
    assert len(stub.requests) == 3
    assert sleeps == [0.5, 1.0]


def test_a_retried_post_sends_the_same_idempotency_key_every_time(stub: Stub, sleeps: list[float]) -> None:
    stub.then(500, {"error": "boom"}).then(429, {"error": "slow down"}).then(201, {"data": {"id": "x"}})
    make(stub, sleeps).issues.create("Title", "task")
    keys = [r["headers"].get("Idempotency-Key") for r in stub.requests]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1


def test_two_separate_calls_get_different_idempotency_keys(stub: Stub, sleeps: list[float]) -> None:
    client = make(stub, sleeps)
    client.issues.update("a", title="x")
    client.issues.delete("a")
    keys = [r["headers"].get("Idempotency-Key") for r in stub.requests]
    assert all(keys) and keys[0] != keys[1]


def test_a_caller_supplied_idempotency_key_is_sent_as_is(stub: Stub, sleeps: list[float]) -> None:
    make(stub, sleeps).issues.create("T", idempotency_key="my-key-1")
    assert stub.requests[0]["headers"]["Idempotency-Key"] == "my-key-1"


def test_reads_carry_no_idempotency_key_but_carry_the_bearer_key(stub: Stub, sleeps: list[float]) -> None:
    stub.then(200, {"data": [], "total": 0})
    make(stub, sleeps).issues.list()
    assert "Idempotency-Key" not in stub.requests[0]["headers"]
    assert stub.requests[0]["headers"]["Authorization"] == "Bearer k"


def test_retry_after_on_a_429_is_honoured(stub: Stub, sleeps: list[float]) -> None:
    stub.then(429, {"error": "Too many requests"}, Retry_After="3").then(200, {"data": {}})
    make(stub, sleeps).dashboard.stats()
    assert sleeps == [3.0]


def test_backoff_is_capped_by_backoff_max(stub: Stub, sleeps: list[float]) -> None:
    for _ in range(5):
        stub.then(503, {"error": "down"})
    stub.then(200, {"data": {}})
    make(stub, sleeps, max_retries=5, backoff_base=1, backoff_max=3).dashboard.stats()
    assert sleeps == [1, 2, 3, 3, 3]


def test_exhausted_retries_raise_server_error_with_the_server_message(stub: Stub, sleeps: list[float]) -> None:
    for _ in range(3):
        stub.then(503, {"error": "Redis is unavailable; retry later"})
    with pytest.raises(ServerError) as info:
        make(stub, sleeps, max_retries=2).issues.get("x")
    assert info.value.status == 503
    assert info.value.message == "Redis is unavailable; retry later"
    assert len(stub.requests) == 3 and len(sleeps) == 2


def test_a_persistent_429_raises_rate_limit_error(stub: Stub, sleeps: list[float]) -> None:
    stub.then(429, {"error": "Too many"}, Retry_After="1").then(429, {"error": "Too many"}, Retry_After="1")
    with pytest.raises(RateLimitError) as info:
        make(stub, sleeps, max_retries=1).issues.list()
    assert info.value.retry_after == 1.0


@pytest.mark.parametrize(("status", "cls"), [
    (400, ValidationError), (401, AuthError), (404, NotFoundError), (409, ConflictError),
    (422, UnprocessableError),
])
def test_client_errors_are_typed_and_never_retried(stub: Stub, sleeps: list[float], status: int,
                                                    cls: type[LoopClientError]) -> None:
    stub.then(status, {"error": f"nope {status}"})
    with pytest.raises(cls) as info:
        make(stub, sleeps).issues.create("T")
    assert info.value.message == f"nope {status}" and info.value.status == status
    assert len(stub.requests) == 1 and sleeps == []
    assert isinstance(info.value, LoopClientError)


def test_validation_details_are_kept_and_shown(stub: Stub, sleeps: list[float]) -> None:
    stub.then(400, {"error": "Invalid request body", "details": {"title": ["is required"]}})
    with pytest.raises(ValidationError) as info:
        make(stub, sleeps).issues.create("")
    assert info.value.details == {"title": ["is required"]}
    assert str(info.value) == "Invalid request body (title: is required)"


def test_details_already_named_in_the_message_are_not_repeated(stub: Stub, sleeps: list[float]) -> None:
    stub.then(400, {"error": "Invalid request: title must not be empty (and 1 more problem).",
                    "details": {"title": ["must not be empty"], "type": ["is required"]}})
    with pytest.raises(ValidationError) as info:
        make(stub, sleeps).issues.create("")
    assert str(info.value) == "Invalid request: title must not be empty (and 1 more problem). (type: is required)"


def test_the_reference_zod_error_envelope_is_understood(stub: Stub, sleeps: list[float]) -> None:
    stub.then(400, {"success": False, "error": {"name": "ZodError", "message": "[...issues...]"}})
    with pytest.raises(ValidationError, match=r"\[\.\.\.issues\.\.\.\]"):
        make(stub, sleeps).issues.create("T")


def test_a_non_json_error_body_still_gives_a_readable_message(stub: Stub, sleeps: list[float]) -> None:
    stub.then(404, "404 Not Found")
    with pytest.raises(NotFoundError, match="404 Not Found"):
        make(stub, sleeps).request("GET", "/nowhere")


def test_connection_refused_is_retried_then_raises_a_connection_error(sleeps: list[float]) -> None:
    client = LoopClient(f"http://127.0.0.1:{free_port()}", "k", sleep=sleeps.append, jitter=0, max_retries=2)
    with pytest.raises(LoopConnectionError, match="Cannot reach Loop"):
        client.issues.list()
    assert sleeps == [0.5, 1.0]


def test_claiming_work_is_not_retried_on_a_500_because_it_may_have_claimed(stub: Stub, sleeps: list[float]) -> None:
    stub.then(500, {"error": "Internal server error"})
    with pytest.raises(ServerError):
        make(stub, sleeps).dispatch.next()
    assert len(stub.requests) == 1


def test_claiming_work_is_retried_on_a_503(stub: Stub, sleeps: list[float]) -> None:
    stub.then(503, {"error": "down"}).then(204)
    assert make(stub, sleeps).dispatch.next() is None
    assert len(stub.requests) == 2


def test_a_dropped_connection_after_sending_is_retried_for_ordinary_calls(stub: Stub, sleeps: list[float]) -> None:
    stub.then(0).then(200, {"data": [], "total": 0})
    assert make(stub, sleeps).issues.list().total == 0
    assert len(stub.requests) == 2


def test_claiming_work_is_not_retried_when_the_request_may_have_reached_the_server(stub: Stub,
                                                                                   sleeps: list[float]) -> None:
    stub.then(0).then(204)
    with pytest.raises(LoopConnectionError):
        make(stub, sleeps).dispatch.next()
    assert len(stub.requests) == 1


def test_claiming_work_is_retried_when_the_connection_was_refused(sleeps: list[float]) -> None:
    client = LoopClient(f"http://127.0.0.1:{free_port()}", "k", sleep=sleeps.append, jitter=0, max_retries=2)
    with pytest.raises(LoopConnectionError) as info:
        client.dispatch.next()
    assert info.value.sent is False and sleeps == [0.5, 1.0]


def test_a_custom_retry_policy_changes_which_statuses_retry(stub: Stub, sleeps: list[float]) -> None:
    stub.then(500, {"error": "x"})
    client = LoopClient(stub.url, "k", sleep=sleeps.append, retry=RetryPolicy(max_retries=0))
    with pytest.raises(ServerError):
        client.issues.list()
    assert sleeps == []


def test_url_and_key_come_from_the_environment(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOP_API_URL", stub.url + "/api/")
    monkeypatch.setenv("LOOP_API_KEY", "env-key")
    stub.then(200, {"data": [], "total": 0})
    client = LoopClient()
    client.labels.list()
    assert client.base_url == stub.url
    assert stub.requests[0]["headers"]["Authorization"] == "Bearer env-key"
    assert stub.requests[0]["path"] == "/api/labels"


def test_arguments_win_over_the_environment(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOP_API_URL", "http://example.invalid:1")
    monkeypatch.setenv("LOOP_API_KEY", "env-key")
    LoopClient(stub.url, "arg-key").labels.list()
    assert stub.requests[0]["headers"]["Authorization"] == "Bearer arg-key"


def test_a_bad_base_url_is_rejected_up_front() -> None:
    with pytest.raises(LoopClientError, match="must be http"):
        LoopClient("ftp://x", "k")


def test_list_filters_are_encoded_as_the_api_expects(stub: Stub, sleeps: list[float]) -> None:
    stub.then(200, {"data": [], "total": 0})
    make(stub, sleeps).issues.list(5, 10, status=["todo", "in_progress"], project_id="p 1", priority=0)
    assert stub.requests[0]["path"] == (
        "/api/issues?status=todo%2Cin_progress&projectId=p+1&priority=0&limit=5&offset=10")


def test_ids_are_escaped_into_a_single_path_segment(stub: Stub, sleeps: list[float]) -> None:
    make(stub, sleeps).issues.get("a/b?c")
    assert stub.requests[0]["path"] == "/api/issues/a%2Fb%3Fc"


def test_paginate_stops_once_offset_reaches_total() -> None:
    calls: list[tuple[int, int]] = []
    rows = [{"n": i} for i in range(5)]

    def fetch(limit: int, offset: int) -> Page:
        calls.append((limit, offset))
        return Page(rows[offset:offset + limit], 5)

    assert [r["n"] for r in paginate(fetch, page_size=2)] == [0, 1, 2, 3, 4]
    assert calls == [(2, 0), (2, 2), (2, 4)]


def test_paginate_stops_at_an_empty_page_even_if_total_says_more() -> None:
    calls: list[int] = []

    def fetch(limit: int, offset: int) -> Page:
        calls.append(offset)
        return Page([{"n": 1}] if offset == 0 else [], 99)

    assert list(paginate(fetch, page_size=1)) == [{"n": 1}]
    assert calls == [0, 1]


# ---------------------------------------------------------------- connection reuse
@pytest.fixture
def keep_alive_stub() -> Iterator[Stub]:
    s = Stub(keep_alive=True)
    yield s
    s.server.shutdown()
    s.server.server_close()


def test_calls_reuse_one_kept_alive_connection(keep_alive_stub: Stub, sleeps: list[float]) -> None:
    loop = make(keep_alive_stub, sleeps)
    loop.issues.list()
    loop.issues.create("a", "task")
    loop.issues.get("x")
    assert len({r["peer"] for r in keep_alive_stub.requests}) == 1


def test_a_kept_connection_the_server_closed_is_replaced_at_once_for_safe_calls(keep_alive_stub: Stub,
                                                                               sleeps: list[float]) -> None:
    keep_alive_stub.then(200, {"data": [], "total": 0}, X_Stub_Close="1").then(201, {"data": {"id": "i1"}})
    loop = make(keep_alive_stub, sleeps)
    loop.issues.list()
    assert loop.issues.create("a", "task")["id"] == "i1"
    assert sleeps == [] and len(keep_alive_stub.requests) == 2  # no backoff, no lost or doubled call
    first, second = keep_alive_stub.requests
    assert first["peer"] != second["peer"]


def test_claiming_work_never_rides_a_reused_connection(keep_alive_stub: Stub, sleeps: list[float]) -> None:
    keep_alive_stub.then(200, {"data": [], "total": 0}).then(204)
    loop = make(keep_alive_stub, sleeps)
    loop.issues.list()
    assert loop.dispatch.next() is None
    first, claim = keep_alive_stub.requests
    assert claim["path"].startswith("/api/dispatch/next") and claim["peer"] != first["peer"]


def test_a_base_url_with_a_path_prefix_keeps_it(stub: Stub, sleeps: list[float]) -> None:
    LoopClient(stub.url + "/loop", "k", sleep=sleeps.append).issues.get("x")
    assert stub.requests[0]["path"] == "/loop/api/issues/x"

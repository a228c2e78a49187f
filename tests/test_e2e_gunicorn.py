"""End to end: ``gunicorn api.app:app`` on a free loopback port, spoken to over real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loop.runtime import build
from loop.settings import Settings
from loop.store import connect
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
KEY = "loop_e2e-" + uuid.uuid4().hex


@dataclass
class Server:
    port: int
    namespace: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, method: str, path: str, body: Any = None, key: str | None = KEY,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=dict(headers or {}))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if key is not None:
            req.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def server(redis_url: str) -> Iterator[Server]:
    port, namespace = free_port(), f"e2e-{uuid.uuid4().hex[:12]}"
    env = {**os.environ, "LOOP_API_KEY": KEY, "REDIS_URL": redis_url, "LOOP_NAMESPACE": namespace,
           "LOOP_MAX_BODY_BYTES": "65536"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "api.app:app", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--graceful-timeout", "2", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    srv = Server(port, namespace)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if srv.call("GET", "/health", key=None)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout and proc.poll() is not None else ""
                raise RuntimeError(f"gunicorn did not become healthy: {out}")
            time.sleep(0.1)
        yield srv
    finally:
        proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        build(connect(redis_url), Settings(api_key=KEY, namespace=namespace)).delete_namespace()


@pytest.mark.slow
def test_an_issue_is_created_listed_and_fetched_over_real_http(server):
    status, _, body = server.call("GET", "/health", key=None)
    assert status == 200 and body["ok"] is True
    status, headers, body = server.call("POST", "/api/issues", {"title": "Over the wire", "type": "task",
                                                                "status": "todo", "projectId": "wire"})
    assert status == 201 and headers["content-type"] == "application/json"
    issue = body["data"]
    assert issue["number"] >= 1 and issue["createdAt"].endswith("Z")
    status, _, body = server.call("GET", "/api/issues?status=todo&projectId=wire&limit=10")
    assert status == 200 and body["total"] == 1 and [i["id"] for i in body["data"]] == [issue["id"]]
    status, _, body = server.call("GET", f"/api/issues/{issue['id']}")
    assert status == 200 and body["data"]["title"] == "Over the wire" and body["data"]["children"] == []
    status, _, body = server.call("GET", "/api/issues", key="wrong")
    assert (status, body) == (401, {"error": "Invalid API key"})
    status, _, body = server.call("GET", "/api/openapi.json", key=None)
    assert status == 200 and body["openapi"] == "3.1.0"


def _raw(server: Server, method: str, path: str, headers: dict[str, str], chunks: list[bytes] | None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, path)
        for name, value in headers.items():
            conn.putheader(name, value)
        # The head and every chunk in one send: a server that answers 413 part way through the
        # body closes the connection, and a client still sending then sees a reset, not the answer.
        body = None if chunks is None else b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        conn.endheaders(message_body=body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


@pytest.mark.slow
def test_chunked_bodies_are_read_and_bounded_over_real_http(server):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    status, body = _raw(server, "POST", "/api/issues", headers,
                        [b'{"title": "chun', b'ked", "type": "task", "projectId": "chunk"}'])
    assert status == 201 and body["data"]["title"] == "chunked"
    big = [b'{"title": "t", "type": "task", "description": "'] + [b"x" * 8192] * 10 + [b'"}']
    status, body = _raw(server, "POST", "/api/issues", headers, big)
    assert (status, body) == (413, {"error": "Request body exceeds the limit of 65536 bytes"})
    assert server.call("GET", "/api/issues?projectId=chunk")[2]["total"] == 1


@pytest.mark.slow
def test_a_declared_oversized_body_is_refused_before_it_is_sent(server):
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", "Content-Length": "10000000"}
    status, body = _raw(server, "POST", "/api/issues", headers, None)
    assert (status, body) == (413, {"error": "Request body exceeds the limit of 65536 bytes"})

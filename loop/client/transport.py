"""HTTP for the SDK, on the standard library only (``http.client``): no dependency to install or
pin for agents that only need to talk to Loop.

Connections are kept alive and reused (one per thread: the runner heartbeats from a second
thread), so a session of calls pays for one TCP and TLS handshake, not one per call. A reused
connection the server has meanwhile closed is replaced at once, and the call resent, only when
resending is safe (a read, or a write with its Idempotency-Key); a call that is neither (claiming
work) always goes over a fresh connection, so "may it have reached the server?" keeps its answer.

One :meth:`Transport.request` sends a call, retries it on 429/5xx and connection errors with
exponential backoff (honouring ``Retry-After``), and turns an error response into the typed
exception of :mod:`loop.client.errors`. Mutating calls carry an ``Idempotency-Key`` that stays
the same across the retries of one call, so a retried POST never acts twice.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import os
import random
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loop import __version__
from loop.client.errors import LoopClientError, LoopConnectionError, error_for_status

DEFAULT_URL = "http://localhost:5667"
MUTATING = frozenset(("POST", "PATCH", "PUT", "DELETE"))


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before retrying.

    Attempt ``n`` (0-based) waits ``min(backoff_max, backoff_base * 2**n)``, spread by up to
    ``jitter`` (a fraction) so that many agents do not retry in lock-step, and never less than
    the server's ``Retry-After`` (capped at ``retry_after_max``).
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.1
    retry_after_max: float = 60.0
    unsent_only: bool = False
    """Retry connection errors only when the request surely never reached the server (for calls
    that are not idempotent and carry no Idempotency-Key, like claiming work)."""
    statuses: frozenset[int] = field(default_factory=lambda: frozenset((429, 500, 502, 503, 504)))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        wait = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        if self.jitter:
            wait *= 1 + random.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.retry_after_max))
        return max(0.0, float(wait))


NO_RETRY = RetryPolicy(max_retries=0)


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any
    """Parsed JSON, or ``None`` for an empty body (204)."""


def encode_query(query: Mapping[str, Any] | None) -> str:
    """``None`` values are dropped, lists become comma-separated, booleans ``true``/``false``."""
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        pairs.append((name, str(value)))
    return urllib.parse.urlencode(pairs)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: rare from Loop; fall back to our own backoff


def _error_message(status: int, body: Any, text: str, reason: str) -> tuple[str, Any]:
    """The server's message and details, whatever envelope the error came in."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, str) and err:
            return err, body.get("details")
        if isinstance(err, dict):  # the reference's zod envelope {"success": false, "error": {...}}
            return str(err.get("message") or err.get("name") or reason), err
        if isinstance(body.get("message"), str):
            return str(body["message"]), body.get("details")
    snippet = text.strip().splitlines()[0][:200] if text.strip() else ""
    return snippet or f"HTTP {status} {reason}".strip(), None


class Transport:
    """Sends requests to one Loop server with one API key."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 user_agent: str | None = None) -> None:
        url = (base_url or os.environ.get("LOOP_API_URL") or DEFAULT_URL).rstrip("/")
        if url.endswith("/api"):  # accept the API root as well as the server root
            url = url[: -len("/api")]
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise LoopClientError(f"The Loop URL must be http(s)://host[:port], got {url!r}")
        self.base_url = url
        self._scheme, self._host, self._port = parsed.scheme, parsed.hostname or "", parsed.port
        self._local = threading.local()
        self.api_key = api_key if api_key is not None else os.environ.get("LOOP_API_KEY")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.user_agent = user_agent or f"loop-sdk-python/{__version__}"

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        qs = encode_query(query)
        return f"{self.base_url}{path}" + (f"?{qs}" if qs else "")

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, json: Any = None,
                headers: Mapping[str, str] | None = None, idempotency_key: str | None = None,
                retry: RetryPolicy | None = None, auth: bool = True, data: bytes | None = None) -> Response:
        """Send one call (with its retries); raise the typed error of a failed response.

        ``json`` is serialized as the body; ``data`` sends bytes as they are (signed webhooks).
        """
        method = method.upper()
        policy = retry or self.retry
        url = self.url(path, query)
        if data is None and json is not None:
            data = jsonlib.dumps(json).encode()
        hdrs = {"Accept": "application/json", "User-Agent": self.user_agent}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        if auth and self.api_key:
            hdrs["Authorization"] = f"Bearer {self.api_key}"
        if method in MUTATING:
            # One key for the call, reused by every retry: the server replays instead of re-acting.
            hdrs["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        hdrs.update(headers or {})
        # Resending over a new connection is safe for reads and keyed writes only.
        reuse = not policy.unsent_only or method in MUTATING
        attempt = 0
        while True:
            try:
                return self._send(method, url, data, hdrs, reuse)
            except LoopClientError as exc:
                if isinstance(exc, LoopConnectionError):
                    retryable = not (policy.unsent_only and exc.sent)
                else:
                    retryable = exc.status in policy.statuses
                if not retryable or attempt >= policy.max_retries:
                    raise
                self.sleep(policy.delay(attempt, exc.retry_after))
                attempt += 1

    def _connection(self, fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's kept-alive connection (``reused`` True), or a new one."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and not fresh:
            return conn, True
        self.close()
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        self._local.conn = conn
        return conn, False

    def close(self) -> None:
        """Close this thread's connection (the next call opens a new one)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _send(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str],
              reuse: bool = True) -> Response:
        parts = urllib.parse.urlsplit(url)  # the base URL may carry a path prefix
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn, reused = self._connection(fresh=not reuse)
        try:
            try:
                resp = self._exchange(conn, method, target, data, headers)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                # The server closed the idle connection we kept: open a new one and resend (safe: see above).
                conn, _ = self._connection(fresh=True)
                resp = self._exchange(conn, method, target, data, headers)
        except (ConnectionRefusedError, socket.gaierror) as err:
            self.close()
            exc = LoopConnectionError(f"Cannot reach Loop at {self.base_url}: {err}", method=method, url=url)
            exc.sent = False
            raise exc from None
        except (http.client.HTTPException, OSError) as err:
            self.close()
            raise LoopConnectionError(f"Cannot reach Loop at {self.base_url}: {err.__class__.__name__}: {err}",
                                      method=method, url=url) from None
        status, hdrs, raw = resp
        if status < 400:
            return Response(status, hdrs, self._parse(raw, method, url))
        text = raw.decode("utf-8", "replace")
        try:
            body = jsonlib.loads(text) if text.strip() else None
        except ValueError:
            body = None
        message, details = _error_message(status, body, text, http.client.responses.get(status, ""))
        cls = error_for_status(status)
        raise cls(message, status=status, details=details, method=method, url=url, body=body,
                  retry_after=_retry_after(hdrs))

    def _exchange(self, conn: http.client.HTTPConnection, method: str, target: str, data: bytes | None,
                  headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One request and its whole response; the connection is dropped if the server will close it."""
        conn.request(method, target, body=data, headers=dict(headers))
        resp = conn.getresponse()
        raw = resp.read()
        if resp.will_close:
            self.close()
        return resp.status, dict(resp.headers.items()), raw

    @staticmethod
    def _parse(raw: bytes, method: str, url: str) -> Any:
        if not raw.strip():
            return None
        try:
            return jsonlib.loads(raw)
        except ValueError:
            raise LoopClientError(f"The server sent a response that is not JSON: {raw[:120]!r}",
                                  method=method, url=url) from None

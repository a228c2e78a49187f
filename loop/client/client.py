"""``LoopClient``: the synchronous Python SDK for the Loop HTTP API."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from loop.client.resources import (
    Comments,
    Dashboard,
    Dispatch,
    Goals,
    Issues,
    Json,
    Keys,
    Labels,
    Projects,
    Relations,
    Reviews,
    Signals,
    Templates,
    Webhooks,
)
from loop.client.transport import RetryPolicy, Transport


class LoopClient:
    """A client for one Loop server.

    ``base_url`` and ``api_key`` default to ``LOOP_API_URL`` (else ``http://localhost:5667``)
    and ``LOOP_API_KEY``. Calls that fail with 429/5xx or a connection error are retried with
    exponential backoff (``max_retries``, ``backoff_base``, ``backoff_max``; ``sleep`` is
    injectable for tests); mutating calls send one ``Idempotency-Key`` for all their retries.

    >>> loop = LoopClient()
    >>> task = loop.dispatch.next()
    >>> if task:
    ...     loop.issues.complete(task["issue"]["id"], "Fixed it", claim_token=task["claim"]["token"])
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 3, backoff_base: float = 0.5, backoff_max: float = 8.0,
                 jitter: float = 0.1, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep, user_agent: str | None = None) -> None:
        policy = retry or RetryPolicy(max_retries=max_retries, backoff_base=backoff_base,
                                      backoff_max=backoff_max, jitter=jitter)
        self.transport = Transport(base_url, api_key, timeout=timeout, retry=policy, sleep=sleep,
                                   user_agent=user_agent)
        t = self.transport
        self.issues = Issues(t)
        self.relations = Relations(t)
        self.comments = Comments(t)
        self.projects = Projects(t)
        self.goals = Goals(t)
        self.labels = Labels(t)
        self.signals = Signals(t)
        self.templates = Templates(t)
        self.reviews = Reviews(t)
        self.dispatch = Dispatch(t)
        self.dashboard = Dashboard(t)
        self.keys = Keys(t)
        self.webhooks = Webhooks(t)

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    @property
    def api_key(self) -> str | None:
        return self.transport.api_key

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, json: Any = None,
                headers: Mapping[str, str] | None = None, idempotency_key: str | None = None) -> Any:
        """A raw call to any path (the parsed JSON body, ``None`` for 204); errors are typed."""
        return self.transport.request(method, path, query=query, json=json, headers=headers,
                                      idempotency_key=idempotency_key).body

    # ------------------------------------------------------------------ system
    def info(self) -> Json:
        """``GET /``: service name and version (public)."""
        out: Json = self.transport.request("GET", "/", auth=False).body
        return out

    def health(self) -> Json:
        """``GET /health`` (public). A 503 (Redis down) raises :class:`ServerError`."""
        out: Json = self.transport.request("GET", "/health", auth=False).body
        return out

    def openapi(self) -> Json:
        out: Json = self.transport.request("GET", "/api/openapi.json", auth=False).body
        return out

    def __repr__(self) -> str:
        return f"LoopClient({self.base_url!r})"

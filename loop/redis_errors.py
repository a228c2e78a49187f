"""What a Redis failure means for a request: which errors are "Redis unavailable", and a bounded retry.

Redis answers some commands with an error that says nothing about the request and everything
about the server: out of memory under ``noeviction`` (OOM), a failed-over replica (READONLY),
a dataset still loading (LOADING), a failed RDB save with ``stop-writes-on-bgsave-error``
(MISCONF), a long script (BUSY), a replica cut from its master (MASTERDOWN). Those, and an
unreachable or silent server, are :func:`unavailable_reason`s: HTTP 503 with ``Retry-After``.

:class:`DeadlineRetry` bounds redis-py's retries by time as well as by count: the default policy
of redis-py 8 retries a timed-out command ten times, so one request behind a paused Redis took
tens of seconds. Timeouts are not retried at all (a silent server stays silent, and a command
that timed out may have run); dropped connections are, within ``REDIS_RETRY_SECONDS``.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from loop.tunables import REDIS_RETRY_SECONDS

T = TypeVar("T")

#: Error codes (first word of the reply) that describe the server's state, not the request.
_CODES: dict[str, str] = {
    "OOM": "out of memory (maxmemory reached)",
    "READONLY": "read-only replica (failed over?)",
    "LOADING": "loading its dataset",
    "MISCONF": "refusing writes after a failed RDB save (MISCONF)",
    "BUSY": "busy running a script",
    "MASTERDOWN": "replica lost its master",
    "NOREPLICAS": "not enough replicas",
    "TRYAGAIN": "cluster resharding",
    "CLUSTERDOWN": "cluster down",
}
#: redis-py strips the code from errors it maps to a class; the class names it again.
_CLASSES: tuple[tuple[type[Exception], str], ...] = (
    (redis.exceptions.OutOfMemoryError, "OOM"),
    (redis.exceptions.ReadOnlyError, "READONLY"),
    (redis.exceptions.BusyLoadingError, "LOADING"),
    (redis.exceptions.ClusterDownError, "CLUSTERDOWN"),
    (redis.exceptions.TryAgainError, "TRYAGAIN"),
)
# A pipeline prefixes the server's message ("Command # 2 (SET ...) of pipeline caused error: OOM
# ..."), and an error raised inside a Lua script may be prefixed by "ERR Error running script".
_CODE_RE = re.compile(r"(?:^|caused error: |\): |^ERR Error running script[^:]*: -?)([A-Z]+) ")


def unavailable_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means Redis cannot serve requests now, or ``None`` (a bug or bad input: 500)."""
    for cls, code in _CLASSES:
        if isinstance(exc, cls):
            return _CODES[code]
    if isinstance(exc, (redis.ConnectionError, socket.timeout)):
        return "unreachable"
    if isinstance(exc, redis.TimeoutError):
        return "not answering (timeout)"
    if isinstance(exc, redis.ResponseError):
        status = getattr(exc, "status_code", None)
        if isinstance(status, str) and status in _CODES:
            return _CODES[status]
        match = _CODE_RE.search(str(exc))
        if match and match.group(1) in _CODES:
            return _CODES[match.group(1)]
    return None


class DeadlineRetry(Retry):
    """redis-py's :class:`Retry`, that also stops once ``seconds`` have passed since the first try."""

    def __init__(self, seconds: float = REDIS_RETRY_SECONDS, retries: int = 10) -> None:
        super().__init__(ExponentialBackoff(cap=0.5, base=0.05), retries,
                         supported_errors=(redis.ConnectionError,))
        self.seconds = seconds

    def call_with_retry(self, do: Callable[[], T], fail: Any, is_retryable: Any = None,
                        with_failure_count: bool = False) -> T:
        deadline = time.monotonic() + self.seconds

        def within(error: Exception) -> bool:
            # A timeout subclassing ConnectionError (none does today) must not be retried either.
            return time.monotonic() < deadline and (is_retryable is None or bool(is_retryable(error)))

        return super().call_with_retry(do, fail, within, with_failure_count)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeadlineRetry) and self.seconds == other.seconds and super().__eq__(other)

    __hash__ = Retry.__hash__

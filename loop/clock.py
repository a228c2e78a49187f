"""Time, injected: production uses :class:`SystemClock`, tests a :class:`FrozenClock`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start_ms: int = 1_771_588_800_000) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


@lru_cache(maxsize=8192)
def _second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds and ``Z`` (JS ``toISOString``).

    The formatting of each second is cached: rows written together share seconds, and formatting
    a datetime costs more than the rest of a row's conversion (a prompt reads up to 50 rows).
    """
    if ms is None:
        return None
    return _second(ms // 1000) + f"{ms % 1000:03d}Z"


def parse_iso(value: str) -> int:
    """ISO-8601 timestamp to epoch milliseconds (raises ValueError)."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)

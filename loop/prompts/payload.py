"""What a prompt shows of a signal payload: a deterministic excerpt, bounded in depth and size.

A payload is whatever a provider sent (up to the body limit, nested up to 250 levels). Printed
whole and indented, a 99 KB payload nested 250 deep became a 16.9 MB claim response (the
indentation grows with the depth). So a prompt gets a copy cut to :data:`MAX_DEPTH` levels,
strings cut to :data:`MAX_STRING` characters and about :data:`MAX_BYTES` of pretty-printed
JSON in all; what was cut is replaced by a marker string, and a top-level ``TRUNCATED_KEY``
says where the full payload is. The excerpt is still JSON, and the same payload always gives
the same excerpt (items are kept in their order until the budget is spent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: Containers nested deeper than this are replaced by a marker.
MAX_DEPTH = 8
#: Approximate budget of the excerpt, pretty-printed (2-space indent), in bytes.
MAX_BYTES = 8 * 1024
#: Longest string (and object key) kept whole, in characters.
MAX_STRING = 500
#: Key added to a cut payload: why it was cut and where the whole one is.
TRUNCATED_KEY = "_truncated"
MARK = "…"


class _Clipper:
    def __init__(self, budget: int) -> None:
        self.left = budget
        self.cut = False

    def text(self, value: str) -> str:
        if len(value) <= MAX_STRING:
            return value
        self.cut = True
        return f"{value[:MAX_STRING]}{MARK} ({len(value) - MAX_STRING} more characters)"

    def walk(self, value: Any, depth: int) -> Any:
        if isinstance(value, Mapping):
            return self.mapping(value, depth)
        if isinstance(value, list | tuple):
            return self.sequence(value, depth)
        if isinstance(value, str):
            value = self.text(value)
            self.left -= len(value.encode()) + 2
        else:
            self.left -= len(str(value))
        return value

    def mapping(self, value: Mapping[Any, Any], depth: int) -> Any:
        if value and depth >= MAX_DEPTH:
            self.cut = True
            return f"{MARK} object of {len(value)} keys (deeper than {MAX_DEPTH} levels)"
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if self.left <= 0:
                self.cut = True
                out[MARK] = f"{len(value) - index} more keys"
                break
            name = self.text(str(key))
            # One line per entry: indentation, quotes, colon, comma.
            self.left -= 2 * (depth + 1) + len(name.encode()) + 5
            out[name] = self.walk(item, depth + 1)
        return out

    def sequence(self, value: list[Any] | tuple[Any, ...], depth: int) -> Any:
        if value and depth >= MAX_DEPTH:
            self.cut = True
            return f"{MARK} array of {len(value)} items (deeper than {MAX_DEPTH} levels)"
        out: list[Any] = []
        for index, item in enumerate(value):
            if self.left <= 0:
                self.cut = True
                out.append(f"{MARK} {len(value) - index} more items")
                break
            self.left -= 2 * (depth + 1) + 2
            out.append(self.walk(item, depth + 1))
        return out


def excerpt(payload: Any, full_at: Callable[[], str]) -> Any:
    """``payload`` cut for a prompt. When something was cut, ``full_at()`` (called only then, e.g.
    ``GET <url>/api/signals/<id>``) is named in the ``TRUNCATED_KEY`` of the excerpt."""
    clipper = _Clipper(MAX_BYTES)
    out = clipper.walk(payload, 0)
    if clipper.cut and isinstance(out, dict):
        out[TRUNCATED_KEY] = (f"Shortened for this prompt (at most {MAX_DEPTH} levels, about {MAX_BYTES // 1024} KB, "
                              f"{MAX_STRING} characters a string). The full payload: {full_at()}")
    return out

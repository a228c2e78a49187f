"""What a provider payload normalizes to, and small helpers for reading untrusted JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Normalized:
    """A provider payload as a signal: the fields of the signal and of its triage issue."""

    source: str
    type: str
    severity: str
    title: str
    source_id: str | None = None
    description: str | None = None
    #: Groups deliveries about one thing under one open triage issue (docs/webhooks.md, per provider).
    fingerprint: str | None = None
    #: A metric reading the delivery reports: recorded on the goals measured by ``metric``.
    metric: str | None = None
    value: float | None = None


def number(value: Any) -> float | None:
    """A finite JSON number as a float, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def clip_fingerprint(value: str) -> str:
    """Fingerprints are bounded like the API's (200 characters)."""
    return value[:200]


def dig(obj: Any, *path: str) -> Any:
    """``obj[p0][p1]...`` or ``None`` when any step is missing or not an object."""
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def text(value: Any) -> str | None:
    """A non-empty string, or ``None`` (payload fields are untrusted)."""
    return value if isinstance(value, str) and value != "" else None


def first(*values: Any) -> Any:
    """The first value that is not ``None`` (JS ``??``)."""
    for v in values:
        if v is not None:
            return v
    return None


def js_number(value: float | int) -> str:
    """A number as JavaScript prints it (``55``, ``-12.5``, ``1e-7``), as the reference does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    out = repr(value)
    if "e" in out:
        mantissa, exp = out.split("e")
        sign = "-" if exp.startswith("-") else "+"
        out = f"{mantissa}e{sign}{int(exp.lstrip('+-'))}"
    return out


def excerpt(value: Any, limit: int = 600) -> str | None:
    """The first ``limit`` characters of a string field, for issue descriptions."""
    s = text(value)
    if s is None:
        return None
    s = s.strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def bullets(pairs: list[tuple[str, Any]]) -> str:
    """Markdown ``- **label**: value`` lines for the pairs whose value is present."""
    return "\n".join(f"- **{k}**: {v}" for k, v in pairs if v not in (None, "", []))

"""Sentry integration-platform webhook -> signal (contract 4.3, plus the real resources).

Contract fields, kept exactly for the ``data.issue`` / ``data.error`` shapes the reference
reads: title ``Sentry: <title> (<count> events)``, severity from level and count, type =
``action`` ?? ``event``, sourceId = ``data.issue.id``. Also understood:

- ``event_alert`` (``data.event`` + ``data.triggered_rule``): title/level from the event,
  sourceId = the event's ``issue_id``;
- ``metric_alert`` (``data.metric_alert``, ``data.description_title``): severity from the
  action (critical -> critical, warning -> medium, resolved -> low), title
  ``Sentry: <description_title> (<action>)``.

The delivery identity (Sentry sends no stable delivery id across retries) is the resource
identity: issue id + action (+ lastSeen), event_alert event id + rule, metric_alert incident
id + action, error event id; anything else falls back to the body hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from loop.signals.common import Normalized, bullets, clip_fingerprint, dig, first, js_number, text


def resource_of(header: str | None, payload: Mapping[str, Any]) -> str:
    """The ``Sentry-Hook-Resource`` header, else guessed from the ``data`` keys."""
    if header:
        return header.strip().lower()
    data = dig(payload, "data")
    for key in ("metric_alert", "issue", "error", "event"):
        if isinstance(dig(data, key), Mapping):
            return {"event": "event_alert"}.get(key, key)
    return "unknown"


def identity(resource: str, payload: Mapping[str, Any], body: bytes) -> str:
    """What makes two deliveries "the same" (see the module docstring)."""
    action = str(payload.get("action") or "")
    data = dig(payload, "data")
    parts: list[Any] | None = None
    if resource == "issue" and dig(data, "issue", "id") is not None:
        parts = [dig(data, "issue", "id"), action, dig(data, "issue", "lastSeen")]
    elif resource == "event_alert" and dig(data, "event", "event_id") is not None:
        parts = [dig(data, "event", "event_id"), dig(data, "triggered_rule")]
    elif resource == "metric_alert" and dig(data, "metric_alert", "id") is not None:
        parts = [dig(data, "metric_alert", "id"), action]
    elif resource == "error" and dig(data, "error", "event_id") is not None:
        parts = [dig(data, "error", "event_id")]
    if parts is None:
        return f"{resource}:sha256:{hashlib.sha256(body).hexdigest()}"
    return ":".join([resource, *("" if p is None else str(p) for p in parts)])


def _count(raw: Any) -> float:
    """``Number(count)`` of the reference; Sentry sends strings. Non-numbers count as 1."""
    if isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip() or "0")
        except ValueError:
            return 1.0
    return 1.0


def severity_for(level: str, count: float) -> str:
    if level == "fatal":
        return "critical"
    if level == "error":
        return "critical" if count >= 100 else "high"
    if level == "warning":
        return "medium"
    return "low"


def normalize(resource: str, payload: Mapping[str, Any]) -> Normalized:
    data = dig(payload, "data")
    action = first(payload.get("action"), payload.get("event"))
    type_ = str(action) if action is not None else resource
    if resource == "metric_alert" or (isinstance(dig(data, "metric_alert"), Mapping) and dig(data, "issue") is None):
        alert = dig(data, "metric_alert")
        title = (text(dig(data, "description_title")) or text(dig(alert, "title"))
                 or text(dig(alert, "alert_rule", "name")) or "Metric alert")
        sev = {"critical": "critical", "warning": "medium", "resolved": "low"}.get(str(action), "medium")
        return Normalized(
            source="sentry", type=type_, severity=sev, title=f"Sentry: {title} ({type_})",
            source_id=_str(dig(alert, "id")),
            fingerprint=_fp("metric_alert", _str(dig(alert, "alert_rule", "id")) or _str(dig(alert, "id"))),
            description=bullets([("Resource", "metric_alert"), ("Action", type_),
                                 ("Details", text(dig(data, "description_text"))),
                                 ("Link", text(dig(data, "web_url")))]) or None,
        )
    issue, error, event = dig(data, "issue"), dig(data, "error"), dig(data, "event")
    title = first(dig(issue, "title"), dig(error, "title"), dig(event, "title"), "Unknown error")
    count = _count(first(dig(issue, "count"), dig(error, "count"), 1))
    level = first(dig(issue, "level"), dig(error, "level"), dig(event, "level"), "error")
    source_id = _str(dig(issue, "id"))
    if source_id is None and issue is None and error is None:
        source_id = _str(dig(event, "issue_id"))
    obj = issue if isinstance(issue, Mapping) else error if isinstance(error, Mapping) else event
    return Normalized(
        source="sentry", type=type_, severity=severity_for(str(level), count),
        title=f"Sentry: {title} ({js_number(count)} events)", source_id=source_id,
        # Sentry's own grouping: every event, alert and issue delivery of one Sentry issue id.
        fingerprint=_fp("issue", _str(dig(issue, "id")) or _str(dig(error, "issue_id")) or _str(dig(event, "issue_id"))),
        description=bullets([
            ("Resource", resource), ("Action", type_), ("Level", str(level)),
            ("Culprit", text(dig(obj, "culprit"))),
            ("Project", text(dig(obj, "project", "slug")) or text(dig(obj, "project", "name"))),
            ("Alert rule", text(dig(data, "triggered_rule"))),
            ("Link", text(dig(obj, "web_url")) or text(dig(obj, "permalink")) or text(dig(obj, "url"))),
        ]) or None,
    )


def _fp(kind: str, ident: str | None) -> str | None:
    return clip_fingerprint(f"sentry:{kind}:{ident}") if ident else None


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    return str(value)

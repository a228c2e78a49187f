"""PostHog webhook -> signal (contract 4.4, plus webhook-destination bodies).

The reference reads a metric-change shape ``{event: {name}, name, value, timeframe}``:
title ``PostHog: <metric> <change>% (<timeframe>)``, severity from ``|change|``, type
``metric_change``, no sourceId. That mapping is kept exactly.

A PostHog *webhook destination* posts ``{event: {uuid, event, distinct_id, properties,
timestamp, url}, person: {...}, project: {...}}``; recognised by ``event.event`` being a
string. Then:

- ``$insight_alert_firing`` -> ``high``, title ``PostHog: alert <alert_name> firing on <insight>``;
- ``$exception`` and ``$error_tracking_issue_created|reopened|spiking`` -> ``high``, titled
  from the exception / error-tracking issue; other ``$error_tracking_issue_*`` -> ``low``;
- any other event -> ``low``, ``PostHog: <event> by <person>``.

type = the event name, sourceId = ``event.uuid``. Dedup identity: ``event.uuid``, else the
body hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from loop.signals.common import (
    Normalized,
    bullets,
    clip_fingerprint,
    dig,
    excerpt,
    first,
    js_number,
    number,
    text,
)

ERROR_TRACKING_ALERTS = frozenset(("created", "reopened", "spiking"))


def identity(payload: Mapping[str, Any], body: bytes) -> str:
    uuid = dig(payload, "event", "uuid")
    if isinstance(uuid, str) and uuid:
        return uuid
    return "sha256:" + hashlib.sha256(body).hexdigest()


def is_destination(payload: Mapping[str, Any]) -> bool:
    return isinstance(dig(payload, "event", "event"), str)


def severity_for_change(change: float) -> str:
    magnitude = abs(change)
    if magnitude >= 50:
        return "critical"
    if magnitude >= 25:
        return "high"
    if magnitude >= 10:
        return "medium"
    return "low"


def normalize(payload: Mapping[str, Any]) -> Normalized:
    if is_destination(payload):
        return _destination(payload)
    metric = first(dig(payload, "event", "name"), payload.get("name"), "unknown_metric")
    value = payload.get("value")
    change = value if isinstance(value, int | float) and not isinstance(value, bool) else 0
    timeframe = first(payload.get("timeframe"), "recent")
    return Normalized(
        source="posthog", type="metric_change", severity=severity_for_change(change),
        title=f"PostHog: {metric} {js_number(change)}% ({timeframe})",
        fingerprint=clip_fingerprint(f"posthog:metric:{metric}"),
        # The reading is the metric's level when the body carries one (``current``), else its value.
        metric=str(metric), value=first(number(payload.get("current")), number(value)),
    )


def _fingerprint(name: str, props: Mapping[str, Any]) -> str | None:
    """Alerts: the alert id (else the insight id); error tracking: the issue id; else none."""
    if name == "$insight_alert_firing":
        ident = first(text(props.get("alert_id")), text(props.get("insight_id")), text(props.get("insight_short_id")),
                      text(props.get("alert_name")))
        return clip_fingerprint(f"posthog:alert:{ident}") if ident else None
    if name == "$exception" or name.startswith("$error_tracking_issue_"):
        ident = text(props.get("$exception_issue_id")) or text(props.get("issue_id")) or text(props.get("id"))
        return clip_fingerprint(f"posthog:error:{ident}") if ident else None
    return None


def _destination(payload: Mapping[str, Any]) -> Normalized:
    event = payload["event"]
    name: str = event["event"]
    props = dig(event, "properties") if isinstance(dig(event, "properties"), Mapping) else {}
    who = (text(dig(payload, "person", "name")) or text(dig(payload, "person", "properties", "email"))
           or text(dig(event, "distinct_id")) or "unknown")
    details: list[tuple[str, Any]] = [("Event", name), ("Project", text(dig(payload, "project", "name"))),
                                      ("Time", text(dig(event, "timestamp")))]
    body: str | None = None
    if name == "$insight_alert_firing":
        alert = text(props.get("alert_name")) or "unnamed alert"
        insight = text(props.get("insight_name")) or "an insight"
        severity, title = "high", f"PostHog: alert {alert} firing on {insight}"
        breaches = props.get("breaches")
        details += [("State", text(props.get("state"))),
                    ("Breaches", "; ".join(str(b) for b in breaches) if isinstance(breaches, list) else text(breaches)),
                    ("Link", text(props.get("insight_url")) or text(props.get("alert_url")) or text(dig(event, "url")))]
    elif name == "$exception":
        exc_list = props.get("$exception_list")
        exc = exc_list[0] if isinstance(exc_list, list) and exc_list and isinstance(exc_list[0], Mapping) else {}
        kind = text(props.get("$exception_type")) or text(dig(exc, "type")) or "Exception"
        message = text(props.get("$exception_message")) or text(dig(exc, "value")) or ""
        severity, title = "high", f"PostHog: {kind}: {message}".rstrip(": ")
        details += [("Person", who), ("Issue", text(props.get("$exception_issue_id"))),
                    ("Page", text(props.get("$current_url"))), ("Link", text(dig(event, "url")))]
    elif name.startswith("$error_tracking_issue_"):
        what = name.removeprefix("$error_tracking_issue_")
        issue = text(props.get("name")) or "unnamed issue"
        severity = "high" if what in ERROR_TRACKING_ALERTS else "low"
        title = f"PostHog: error tracking issue {what}: {issue}"
        body = excerpt(props.get("description"))
        details += [("Status", text(props.get("status"))), ("Link", text(dig(event, "url")))]
    else:
        severity, title = "low", f"PostHog: {name} by {who}"
        details += [("Person", who), ("Page", text(props.get("$current_url"))), ("Link", text(dig(event, "url")))]
    summary = bullets(details)
    return Normalized(
        source="posthog", type=name, severity=severity, title=title,
        source_id=text(dig(event, "uuid")), fingerprint=_fingerprint(name, props),
        metric=(text(props.get("insight_name")) or text(props.get("alert_name"))) if name == "$insight_alert_firing" else None,
        value=first(number(props.get("current_value")), number(props.get("value")))
        if name == "$insight_alert_firing" else None,
        description="\n\n".join(p for p in (summary, body) if p) or None,
    )

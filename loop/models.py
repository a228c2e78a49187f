"""Enums and the row codec: how an entity is laid out in its Redis hash and on the wire.

Inside Loop a row is a dict keyed by its wire (camelCase) names, with timestamps as epoch
milliseconds. In Redis, ``None`` fields are simply absent (smaller hashes); objects are
JSON. On the wire, timestamps become ISO-8601 strings and absent fields ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from loop.clock import iso

ISSUE_TYPES = ("signal", "hypothesis", "plan", "task", "monitor")
ISSUE_STATUSES = ("triage", "backlog", "todo", "in_progress", "done", "canceled")
RESOLVED_STATUSES = ("done", "canceled")
RELATION_TYPES = ("blocks", "blocked_by", "related", "duplicate")
AUTHOR_TYPES = ("human", "agent")
PROJECT_STATUSES = ("backlog", "planned", "active", "paused", "completed", "canceled")
PROJECT_HEALTH = ("on_track", "at_risk", "off_track")
GOAL_STATUSES = ("active", "achieved", "abandoned")
SEVERITIES = ("low", "medium", "high", "critical")
VERSION_STATUSES = ("active", "draft", "retired")

Row = dict[str, Any]

# Field kinds: s = string, i = int, f = float, j = JSON, t = timestamp (epoch ms), b = bool
ISSUE_FIELDS: dict[str, str] = {
    "id": "s", "number": "i", "title": "s", "description": "s", "type": "s", "status": "s",
    "priority": "i", "parentId": "s", "projectId": "s", "signalSource": "s", "signalPayload": "j",
    "hypothesis": "j", "agentSessionId": "s", "agentSummary": "s", "commits": "j",
    "pullRequests": "j", "completedAt": "t", "createdAt": "t", "updatedAt": "t", "deletedAt": "t",
}
PROJECT_FIELDS: dict[str, str] = {
    "id": "s", "name": "s", "description": "s", "status": "s", "health": "s", "goalId": "s",
    "createdAt": "t", "updatedAt": "t", "deletedAt": "t",
}
GOAL_FIELDS: dict[str, str] = {
    "id": "s", "title": "s", "description": "s", "metric": "s", "targetValue": "f",
    "currentValue": "f", "unit": "s", "status": "s", "projectId": "s", "createdAt": "t",
    "updatedAt": "t", "deletedAt": "t",
}
LABEL_FIELDS: dict[str, str] = {"id": "s", "name": "s", "color": "s", "createdAt": "t", "deletedAt": "t"}
RELATION_FIELDS: dict[str, str] = {
    "id": "s", "type": "s", "issueId": "s", "relatedIssueId": "s", "createdAt": "t",
}
#: ``keyName``: the API key the comment was made with (improvement 11), beyond the reference fields.
COMMENT_FIELDS: dict[str, str] = {
    "id": "s", "body": "s", "issueId": "s", "authorName": "s", "authorType": "s", "parentId": "s",
    "createdAt": "t", "keyName": "s",
}


def _enc(kind: str, value: Any) -> str:
    if kind == "j":
        return orjson.dumps(value).decode()
    if kind == "b":
        return "1" if value else "0"
    if kind == "f":
        return repr(float(value))
    return str(value)


def _dec(kind: str, raw: str) -> Any:
    if kind == "s":
        return raw
    if kind in ("i", "t"):
        return int(raw)
    if kind == "f":
        return float(raw)
    if kind == "j":
        return orjson.loads(raw)
    if kind == "b":
        return raw == "1"
    raise ValueError(kind)


def encode(fields: Mapping[str, str], row: Mapping[str, Any]) -> dict[str, str]:
    """Row -> HSET mapping (``None`` values omitted; see :func:`nulls`)."""
    return {k: _enc(fields[k], v) for k, v in row.items() if v is not None and k in fields}


def nulls(fields: Mapping[str, str], row: Mapping[str, Any]) -> list[str]:
    """Fields of ``row`` set to ``None``: to HDEL on update."""
    return [k for k, v in row.items() if v is None and k in fields]


def decode(fields: Mapping[str, str], raw: Mapping[str, str]) -> Row:
    """HGETALL result -> row with every known field present (absent = ``None``)."""
    row: Row = dict.fromkeys(fields)
    for k, v in raw.items():
        kind = fields.get(k)
        if kind is not None:
            row[k] = _dec(kind, v)
    return row


def wire(fields: Mapping[str, str], row: Mapping[str, Any]) -> Row:
    """Row -> JSON-ready dict: timestamps as ISO-8601 strings."""
    out: Row = {}
    for k, kind in fields.items():
        v = row.get(k)
        out[k] = iso(v) if kind == "t" and v is not None else v
    return out

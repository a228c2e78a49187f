"""Enums and the row codec: how an entity is laid out in its Redis hash and on the wire.

Inside Loop a row is a dict keyed by its wire (camelCase) names, with timestamps as epoch
milliseconds. In Redis, ``None`` fields are simply absent (smaller hashes); objects are
JSON. On the wire, timestamps become ISO-8601 strings and absent fields ``null``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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

# Field kinds: s = string, i = int, f = float, j = JSON, t = timestamp (epoch ms), b = bool,
# S = long text, stored in pieces (see :func:`pieces`)
ISSUE_FIELDS: dict[str, str] = {
    "id": "s", "number": "i", "title": "s", "description": "S", "type": "s", "status": "s",
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


#: Redis keeps a hash in its compact encoding (listpack, about half the memory) only while
#: every value is at most ``hash-max-listpack-value`` bytes, 64 by default: one 200-character
#: description would turn the whole issue hash into a hashtable. So an ``S`` field longer than
#: that is stored as pieces of at most PIECE_BYTES: ``<field>`` holds the first,
#: ``<field>~1``, ``<field>~2``... the rest. Values needing more than MAX_PIECES pieces are
#: stored whole (the hash cannot stay compact then anyway: it would pass the entry limit).
PIECE_BYTES = 64
MAX_PIECES = 16
PIECE_SEP = "~"


def pieces(value: str) -> list[str]:
    """``value`` cut into UTF-8 pieces of at most PIECE_BYTES (never inside a character)."""
    data = value.encode()
    if len(data) <= PIECE_BYTES or len(data) > PIECE_BYTES * MAX_PIECES:
        return [value]
    out: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + PIECE_BYTES, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte: back off
            end -= 1
        out.append(data[start:end].decode())
        start = end
    return out if len(out) <= MAX_PIECES else [value]


def piece_names(field: str, value: Any) -> list[str]:
    """The hash fields an ``S`` value occupies (none for ``None``)."""
    if value is None:
        return []
    return [field] + [f"{field}{PIECE_SEP}{i}" for i in range(1, len(pieces(str(value))))]


def _enc(kind: str, value: Any) -> str:
    if kind == "j":
        return orjson.dumps(value).decode()
    if kind == "b":
        return "1" if value else "0"
    if kind == "f":
        return repr(float(value))
    return str(value)


def _dec(kind: str, raw: str) -> Any:
    if kind in ("s", "S"):
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
    """Row -> HSET mapping (``None`` values omitted; see :func:`stale`)."""
    out: dict[str, str] = {}
    for k, v in row.items():
        kind = fields.get(k)
        if v is None or kind is None:
            continue
        if kind == "S":
            parts = pieces(str(v))
            out[k] = parts[0]
            for i in range(1, len(parts)):
                out[f"{k}{PIECE_SEP}{i}"] = parts[i]
        else:
            out[k] = _enc(kind, v)
    return out


def stale(fields: Mapping[str, str], changes: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[str]:
    """Hash fields to HDEL when ``changes`` is written over ``old``: the fields set to
    ``None``, and the pieces of an ``S`` field the new value no longer fills."""
    gone: list[str] = []
    for k, v in changes.items():
        kind = fields.get(k)
        if kind is None:
            continue
        if kind == "S":
            if old is not None:
                before = piece_names(k, old.get(k))
            elif v is None:  # unknown old value: every name it could have used
                before = [k] + [f"{k}{PIECE_SEP}{i}" for i in range(1, MAX_PIECES)]
            else:  # a new row
                before = []
            keep = set(piece_names(k, v))
            gone += [n for n in before if n not in keep]
        elif v is None:
            gone.append(k)
    return gone


def joined(get: Callable[[str], Any], field: str, first: str) -> str:
    """An ``S`` value put back together: ``first`` plus the contiguous pieces ``get`` finds."""
    parts = [first]
    while (piece := get(f"{field}{PIECE_SEP}{len(parts)}")) is not None:
        parts.append(piece)
    return "".join(parts)


def decode(fields: Mapping[str, str], raw: Mapping[str, str]) -> Row:
    """HGETALL result -> row with every known field present (absent = ``None``)."""
    row: Row = dict.fromkeys(fields)
    pieced: set[str] | None = None
    for k, v in raw.items():
        kind = fields.get(k)
        if kind is not None:
            row[k] = _dec(kind, v)
        elif PIECE_SEP in k:
            (pieced := pieced or set()).add(k.partition(PIECE_SEP)[0])
    for base in pieced or ():
        if fields.get(base) == "S" and row[base] is not None:
            row[base] = joined(raw.get, base, row[base])
    return row


def wire(fields: Mapping[str, str], row: Mapping[str, Any]) -> Row:
    """Row -> JSON-ready dict: timestamps as ISO-8601 strings."""
    out: Row = {}
    for k, kind in fields.items():
        v = row.get(k)
        out[k] = iso(v) if kind == "t" and v is not None else v
    return out

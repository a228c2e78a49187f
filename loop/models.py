"""Enums and the row codec: how an entity is laid out in its Redis hash and on the wire.

Inside Loop a row is a dict keyed by its wire (camelCase) names, with timestamps as epoch
milliseconds. In Redis, ``None`` fields are simply absent (smaller hashes); objects are
JSON. On the wire, timestamps become ISO-8601 strings and absent fields ``null``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

from loop.clock import iso
from loop.tunables import ISO_MEMO_MAX, WIRE_MEMO_MAX

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
V = TypeVar("V")

# Field kinds: s = string, i = int, f = float, j = JSON, t = timestamp (epoch ms), b = bool
ISSUE_FIELDS: dict[str, str] = {
    "id": "s", "number": "i", "title": "s", "description": "s", "type": "s", "status": "s",
    "priority": "i", "parentId": "s", "projectId": "s", "signalSource": "s", "signalPayload": "j",
    "hypothesis": "j", "agentSessionId": "s", "agentSummary": "s", "commits": "j",
    "pullRequests": "j", "completedAt": "t", "createdAt": "t", "updatedAt": "t", "deletedAt": "t",
    # Signal grouping (issue 14): signals attached, the last one's time, the newest few (prompt).
    "signalCount": "i", "lastSignalAt": "t", "signalRecent": "j",
    "notBefore": "t", "outcome": "s",
}
#: What a monitor's check found (issue 13): set on monitors and the hypotheses they verify.
OUTCOMES = ("validated", "invalidated", "inconclusive")
#: The issue types that take an ``outcome``.
OUTCOME_TYPES = ("hypothesis", "monitor")
PROJECT_FIELDS: dict[str, str] = {
    "id": "s", "name": "s", "description": "s", "status": "s", "health": "s", "goalId": "s",
    "createdAt": "t", "updatedAt": "t", "deletedAt": "t",
}
GOAL_FIELDS: dict[str, str] = {
    "id": "s", "title": "s", "description": "s", "metric": "s", "targetValue": "f",
    "currentValue": "f", "unit": "s", "status": "s", "projectId": "s", "createdAt": "t",
    "updatedAt": "t", "deletedAt": "t",
    # Readings (issue 14): increase|decrease, the latest reading's time, the last few readings.
    "direction": "s", "lastReadingAt": "t", "trend": "j",
}
GOAL_DIRECTIONS = ("increase", "decrease")
LABEL_FIELDS: dict[str, str] = {"id": "s", "name": "s", "color": "s", "createdAt": "t", "deletedAt": "t"}
RELATION_FIELDS: dict[str, str] = {
    "id": "s", "type": "s", "issueId": "s", "relatedIssueId": "s", "createdAt": "t",
}
#: ``keyName``: the API key the comment was made with (improvement 11), beyond the reference fields.
COMMENT_FIELDS: dict[str, str] = {
    "id": "s", "body": "s", "issueId": "s", "authorName": "s", "authorType": "s", "parentId": "s",
    "createdAt": "t", "keyName": "s",
}


#: Loop before issue 11 stored a ``description`` over 64 bytes in pieces (``description``,
#: ``description~1``, ``description~2``...; at most 16) to fit Redis's default
#: ``hash-max-listpack-value``. Loop now stores every value whole and recommends raising that
#: setting (docs/operations.md); :func:`decode` still joins such pieces, and an issue update that
#: rewrites the description deletes them (:func:`legacy_piece_names`).
LEGACY_PIECE_SEP = "~"
LEGACY_MAX_PIECES = 16


def legacy_piece_names(field: str) -> list[str]:
    """Every hash field an older Loop may have used for the pieces after the first of ``field``."""
    return [f"{field}{LEGACY_PIECE_SEP}{i}" for i in range(1, LEGACY_MAX_PIECES)]


def _enc(kind: str, value: Any) -> str:
    if kind == "j":
        return orjson.dumps(value).decode()
    if kind == "b":
        return "1" if value else "0"
    if kind == "f":
        return repr(float(value))
    return str(value)


def _bool(raw: str) -> bool:
    return raw == "1"


#: Raw hash value -> row value, per field kind (strings are kept as they are).
_DECODERS: dict[str, Callable[[str], Any]] = {"i": int, "t": int, "f": float, "j": orjson.loads, "b": _bool}


def encode(fields: Mapping[str, str], row: Mapping[str, Any]) -> dict[str, str]:
    """Row -> HSET mapping (``None`` values omitted; see :func:`stale`)."""
    return {k: _enc(kind, v) for k, v in row.items() if v is not None and (kind := fields.get(k)) is not None}


def stale(fields: Mapping[str, str], changes: Mapping[str, Any]) -> list[str]:
    """Hash fields to HDEL when ``changes`` is written: the known fields set to ``None``."""
    return [k for k, v in changes.items() if v is None and k in fields]


def _joined(raw: Mapping[str, str], field: str, first: str) -> str:
    """A value an older Loop stored in pieces: ``first`` plus the contiguous pieces in ``raw``."""
    parts = [first]
    while (piece := raw.get(f"{field}{LEGACY_PIECE_SEP}{len(parts)}")) is not None:
        parts.append(piece)
    return "".join(parts)


def pairs(flat: Sequence[Any]) -> dict[Any, Any]:
    """A flat ``[field, value, ...]`` reply (HGETALL inside a Lua script) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def decode(fields: Mapping[str, str], raw: Mapping[str, str]) -> Row:
    """HGETALL (or HMGET, as a dict) result -> row with every known field present (absent = ``None``).

    The one decoder of rows: the store, dispatch and the prompt context all read through it.
    """
    row: Row = dict.fromkeys(fields)
    legacy = False
    for k, v in raw.items():
        kind = fields.get(k)
        if kind is None:
            legacy = legacy or LEGACY_PIECE_SEP in k
        elif kind == "s":
            row[k] = v
        else:
            row[k] = _DECODERS[kind](v)
    if legacy:
        for k, v in row.items():
            if isinstance(v, str) and f"{k}{LEGACY_PIECE_SEP}1" in raw:
                row[k] = _joined(raw, k, v)
    return row


#: Per fields mapping (by identity; the mapping is kept so its id cannot be reused): its names and
#: its timestamp fields, for :func:`wire`.
_WIRE_PLANS: dict[int, tuple[Mapping[str, str], list[str], list[str]]] = {}


def wire(fields: Mapping[str, str], row: Mapping[str, Any]) -> Row:
    """Row -> JSON-ready dict: timestamps as ISO-8601 strings, every field of ``fields`` in order.

    A row as :func:`decode` makes it (exactly the fields, in order) is copied in C and only its
    timestamps converted; any other row is rebuilt field by field."""
    plan = _WIRE_PLANS.get(id(fields))
    if plan is None or plan[0] is not fields:
        plan = _WIRE_PLANS[id(fields)] = (fields, list(fields), [k for k, kind in fields.items() if kind == "t"])
    if list(row) != plan[1]:
        return {k: iso(v) if kind == "t" and v is not None else v for k, kind in fields.items() for v in (row.get(k),)}
    out = dict(row)
    for k in plan[2]:
        v = out[k]
        if v is not None:
            out[k] = iso(v)
    return out


#: ISO-8601 forms of raw timestamps already seen: a memo of a pure function (the same raw value
#: always gives the same string), so it cannot serve anything stale. Pages re-read the same rows and
#: rows written together share timestamps; cleared when full to bound memory.
_ISO_MEMO: dict[str, str | None] = {}


def _iso_of(raw: str) -> str | None:
    text = _ISO_MEMO.get(raw)
    if text is None:
        if len(_ISO_MEMO) >= ISO_MEMO_MAX:
            _ISO_MEMO.clear()
        text = _ISO_MEMO[raw] = iso(int(raw))
    return text


#: Raw hash value -> wire value, per field kind: :data:`_DECODERS`, timestamps straight to ISO-8601.
_WIRE_DECODERS: dict[str, Callable[[str], Any]] = {**_DECODERS, "t": _iso_of}


def wire_values(fields: Mapping[str, str], values: Sequence[Any]) -> Row | None:
    """``wire(fields, decode(fields, ...))`` of an HMGET reply of every field of ``fields``, in order
    (``None``, or ``False`` from a script's cjson, for a missing field): the row's wire form, or
    ``None`` when every field is missing (no such hash).

    Written by hand, in one pass, for the prompt context's hot loop (up to 50 sibling rows a
    claim: ~2.5 us a row where decode then wire cost ~5). No legacy pieces: read those with
    HGETALL and :func:`decode`.
    """
    if values.count(False) + values.count(None) == len(values):
        return None
    return {k: None if v is None or v is False else v if kind == "s" else _WIRE_DECODERS[kind](v)
            for (k, kind), v in zip(fields.items(), values, strict=True)}


def convert_page(fields: Mapping[str, str], replies: Sequence[Sequence[Any]],
                 decoders: Mapping[str, Callable[[str], Any]],
                 fallback: Callable[[Mapping[str, str]], Row]) -> list[Row | None]:
    """Rows (or ``None`` for a missing hash) from flat HGETALL replies (``rows_read.lua``), each
    known value converted by ``decoders[kind]`` (:data:`_DECODERS`: rows; :data:`_WIRE_DECODERS`:
    wire form), every field of ``fields`` present and in its order.

    A page's hot loop: per row one C-level copy of the all-null row, one ``update`` from the
    pairs, then a conversion of only the non-string fields the row holds (~1.5 us a row where
    :func:`decode` then :func:`wire` cost ~12). A row holding a field Loop does not know (an
    older Loop's description pieces) goes through ``fallback`` (:func:`decode`, which joins them).
    """
    blank: Row = dict.fromkeys(fields)
    size = len(blank)
    convert = {k: decoders[kind] for k, kind in fields.items() if kind != "s"}
    out: list[Row | None] = []
    for flat in replies:
        if not flat:
            out.append(None)
            continue
        row = blank.copy()
        it = iter(flat)
        row.update(zip(it, it, strict=True))
        if len(row) != size:
            out.append(fallback(pairs(flat)))
            continue
        for k in flat[::2]:
            conv = convert.get(k)
            if conv is not None:
                row[k] = conv(row[k])
        out.append(row)
    return out


def wire_page(fields: Mapping[str, str], replies: Sequence[Sequence[Any]]) -> list[Row | None]:
    """:func:`convert_page` to the wire form (timestamps as ISO-8601 strings)."""
    return convert_page(fields, replies, _WIRE_DECODERS, lambda raw: wire(fields, decode(fields, raw)))


def decode_page(fields: Mapping[str, str], replies: Sequence[Sequence[Any]]) -> list[Row | None]:
    """:func:`convert_page` to rows (timestamps as epoch ms)."""
    return convert_page(fields, replies, _DECODERS, lambda raw: decode(fields, raw))


#: Per fields mapping (by identity, the mapping kept so its id cannot be reused): the encoded row
#: (``rows_read.lua`` "json": the JSON of its whole HGETALL reply) -> its wire form as JSON bytes
#: (str -> bytes: objects the garbage collector never scans), and -> its decoded row for the
#: callers that want it (the dispatch queue; they only read it).
_WIRE_MEMOS: dict[int, tuple[Mapping[str, str], dict[str, bytes], dict[str, Row]]] = {}


def wire_entries(fields: Mapping[str, str], encoded: Sequence[str],
                 rows: bool = False) -> tuple[list[orjson.Fragment], list[Row]]:
    """The rows of a page read by ``rows_read.lua`` with "json", in order, a missing hash
    (``"{}"``) skipped: their wire forms as JSON fragments (``orjson.dumps`` embeds them as they
    are) and, with ``rows``, their decoded rows (not to be modified; else an empty list).

    A memo of a pure function: the key is the row's whole content as Redis returned it for this
    request, so a row changed by any write (an HTTP PATCH, the Lua claim, a delete) is a new key
    and is converted afresh; nothing can be served stale. A page re-read unchanged (a dashboard
    polling, agents listing the backlog) costs one dict lookup a row instead of a conversion and
    an encoding; the rows it has not seen are converted together (:func:`wire_page`, one plan).
    Bounded: cleared when full (:data:`loop.tunables.WIRE_MEMO_MAX`)."""
    entry = _WIRE_MEMOS.get(id(fields))
    if entry is None or entry[0] is not fields:
        entry = _WIRE_MEMOS[id(fields)] = (fields, {}, {})
    _, wires, decoded = entry
    present = [text for text in encoded if text != "{}"]
    found = _memoized(wires, present, lambda texts: [orjson.dumps(w) for w in wire_page(fields, texts)])
    out_rows: list[Row] = []
    if rows:
        have = _memoized(decoded, present, lambda texts: [r or {} for r in decode_page(fields, texts)])
        out_rows = [have[text] for text in present]
    return [orjson.Fragment(found[text]) for text in present], out_rows


def _memoized(memo: dict[str, V], texts: Sequence[str],
              convert: Callable[[list[list[Any]]], Sequence[V]]) -> dict[str, V]:
    """``text -> convert(text)`` for each encoded row, from ``memo`` or converted together (the
    rows not in it, decoded from their JSON) and remembered; ``memo`` is cleared when full.
    Read into locals: another thread may clear the shared memo between two lines here."""
    found: dict[str, V] = {}
    for text in texts:
        if (hit := memo.get(text)) is not None:
            found[text] = hit
    missing = [text for text in texts if text not in found]
    if missing:
        if len(memo) + len(missing) > WIRE_MEMO_MAX:
            memo.clear()
        for text, value in zip(missing, convert([orjson.loads(t) for t in missing]), strict=True):
            found[text] = memo[text] = value
    return found


def wire_fragments(fields: Mapping[str, str], encoded: Sequence[str]) -> list[orjson.Fragment]:
    """:func:`wire_entries`' wire forms only (``GET /api/issues``)."""
    return wire_entries(fields, encoded)[0]

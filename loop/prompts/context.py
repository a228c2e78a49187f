"""The hydration context of a prompt (contract 6.3), loaded in three pipelined round trips.

Everything a template sees is JSON-shaped: wire field names, ISO-8601 timestamps, ``None``
for absent values (which render empty).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from loop import models
from loop.clock import iso
from loop.models import GOAL_FIELDS, ISSUE_FIELDS, LABEL_FIELDS, PROJECT_FIELDS, RELATION_FIELDS, Row
from loop.prompts.fields import UNSUCCESSFUL_SESSION_STATUSES

if TYPE_CHECKING:
    from loop.store.base import RedisStore


@dataclass
class Facts:
    """What is known about one issue: the matching inputs and the template variables."""

    issue: Row
    label_names: list[str]
    has_failed_sessions: bool
    variables: dict[str, Any] = field(default_factory=dict)
    #: ``P:prompts:generation`` read with the context (spares selection a round trip).
    generation: str | None = None


#: What siblings and children carry: enough to see who does what, without every payload
#: (a parent with many children would otherwise make each dispatch read kilobytes).
SUMMARY_FIELDS = {k: ISSUE_FIELDS[k] for k in (
    "id", "number", "title", "type", "status", "priority", "parentId", "projectId", "agentSummary",
    "completedAt", "createdAt", "updatedAt", "deletedAt")}
REF_FIELDS = ("id", "number", "title", "status", "deletedAt")


def _issue(row: Row) -> Row:
    return models.wire(ISSUE_FIELDS, row)


def _fields(fields: Mapping[str, str], names: Sequence[str], values: Sequence[Any]) -> Row | None:
    """An HMGET reply as a decoded row (``None`` if the hash does not exist)."""
    raw = {n: v for n, v in zip(names, values, strict=True) if v is not None}
    return models.decode(fields, raw) if raw else None


@lru_cache(maxsize=8192)
def _iso(ms: int) -> str | None:
    return iso(ms)  # many rows share timestamps (createdAt == updatedAt, batch imports)


def _wire_values(fields: Mapping[str, str], names: Sequence[str], values: Sequence[Any]) -> Row | None:
    """An HMGET reply straight to its wire form (one pass; ``None`` if the hash is missing)."""
    if all(v is None for v in values):
        return None
    out: Row = {}
    for name, value in zip(names, values, strict=True):
        kind = fields[name]
        if value is None or kind == "s":
            out[name] = value
        elif kind == "t":
            out[name] = _iso(int(value))
        elif kind == "i":
            out[name] = int(value)
        else:
            out[name] = models.decode({name: kind}, {name: value})[name]
    return out


def _ref(row: Row) -> Row:
    return {"id": row["id"], "number": row["number"], "title": row["title"], "status": row["status"]}


def _ts(value: Any) -> Any:
    return iso(value) if isinstance(value, int) and not isinstance(value, bool) else value


def session_view(session: Mapping[str, Any]) -> Row:
    """A session as templates see it (``agentSummary`` kept for reference templates)."""
    summary = session.get("summary")
    return {
        "id": session.get("id"),
        "status": session.get("status"),
        "agentName": session.get("agentName"),
        "summary": summary,
        "agentSummary": summary,
        "reason": session.get("reason"),
        "claimedAt": _ts(session.get("claimedAt")),
        "endedAt": _ts(session.get("endedAt")),
        "versionId": session.get("versionId"),
    }


def has_failed(sessions: Sequence[Mapping[str, Any]]) -> bool:
    """An earlier agent took the issue and did not finish it: a session that failed, whose lease
    expired, or that was released. A retry template can then warn the next agent."""
    return any(s.get("status") in UNSUCCESSFUL_SESSION_STATUSES for s in sessions)


def _session_reader() -> Any:
    """Dispatch's session codec, or ``None`` when dispatch is not installed."""
    try:
        from loop.dispatch import sessions as codec
    except ImportError:  # pragma: no cover - dispatch ships with Loop
        return None
    return codec


def load(store: RedisStore, issue: Row, sessions: Sequence[Mapping[str, Any]] | None,
         claim: Mapping[str, Any] | None = None) -> Facts:
    """Read everything around ``issue`` (a decoded row) and build the template variables.

    ``sessions=None`` reads the issue's agent sessions in the same round trips (what
    ``store.dispatch.sessions_for_issue`` returns, without its two extra round trips).
    """
    k = store.keys
    codec: Any = _session_reader() if sessions is None else None
    own_sessions = codec is not None and hasattr(k, "issue_sessions") and hasattr(k, "session")
    iid = issue["id"]
    parent_id = issue.get("parentId")
    project_id = issue.get("projectId")

    # Round trip 1: the issue's neighbourhood (and the template catalog's generation).
    pipe = store.r.pipeline(transaction=False)
    pipe.hgetall(k.issue(parent_id)) if parent_id else pipe.echo("")
    pipe.zrange(k.issue_index("parent", parent_id or iid), 0, -1)
    pipe.smembers(k.issue_labels(iid))
    pipe.zrange(k.issue_relations(iid), 0, -1)
    pipe.hgetall(k.row("project", project_id)) if project_id else pipe.echo("")
    pipe.zrange(k.index("goals"), 0, -1) if project_id else pipe.echo("")
    pipe.get(k.prompts_generation())
    # Both blocking directions block (improvement 3): dispatch keeps, per issue, who blocks it and
    # whom it blocks, whichever issue the relation was recorded on. Without dispatch, only this
    # issue's own relations are known.
    edges = hasattr(k, "dispatch_blockers") and hasattr(k, "dispatch_blocking")
    pipe.hkeys(k.dispatch_blockers(iid)) if edges else pipe.echo("")
    pipe.hkeys(k.dispatch_blocking(iid)) if edges else pipe.echo("")
    pipe.zrange(k.issue_sessions(iid), 0, -1) if own_sessions else pipe.echo("")
    (raw_parent, family_ids, label_ids, relation_ids, raw_project, goal_ids, generation,
     blocker_ids, blocked_ids, session_ids) = pipe.execute()
    session_ids = list(session_ids) if own_sessions else []
    parent = models.decode(ISSUE_FIELDS, raw_parent) if raw_parent else None
    project = models.decode(PROJECT_FIELDS, raw_project) if raw_project else None
    family_ids = [i for i in family_ids if i != iid]
    label_ids = sorted(label_ids)
    goal_ids = list(goal_ids) if project else []

    # Round trip 2: siblings or children, labels, relations, goal candidates.
    summary = list(SUMMARY_FIELDS)
    picked, rows = _read(store, [k.issue(i) for i in family_ids], summary,
                         [k.row("label", i) for i in label_ids] + [k.row("relation", i) for i in relation_ids]
                         + [k.row("goal", i) for i in goal_ids] + [k.session(i) for i in session_ids])
    family = [r for r in (_wire_values(SUMMARY_FIELDS, summary, v) for v in picked) if r]
    n1, n2 = len(label_ids), len(label_ids) + len(relation_ids)
    labels = [models.decode(LABEL_FIELDS, r) for r in rows[:n1] if r]
    relations = [models.decode(RELATION_FIELDS, r) for r in rows[n1:n2] if r]
    n3 = n2 + len(goal_ids)
    goal_id = _pick_goal(project, goal_ids, [(r.get("projectId"), r.get("status")) for r in rows[n2:n3]])
    if sessions is None:
        sessions = [codec.wire(codec.decode(r)) for r in rows[n3:] if r] if own_sessions else []

    # Round trip 3: relation targets and the goal.
    linked = {
        "blocked_by": [r["relatedIssueId"] for r in relations if r["type"] == "blocked_by"] + sorted(blocker_ids or []),
        "blocks": [r["relatedIssueId"] for r in relations if r["type"] == "blocks"] + sorted(blocked_ids or []),
    }
    targets = list(dict.fromkeys(linked["blocked_by"] + linked["blocks"]))
    picked, rows = _read(store, [k.issue(i) for i in targets], list(REF_FIELDS),
                         [k.row("goal", goal_id)] if goal_id else [])
    by_id = {r["id"]: r for r in (_fields(ISSUE_FIELDS, REF_FIELDS, v) for v in picked) if r}
    goal = models.decode(GOAL_FIELDS, rows[0]) if rows and rows[0] else None

    def refs(kind: str) -> list[Row]:
        ids = dict.fromkeys(linked[kind])
        return [_ref(by_id[i]) for i in ids if i in by_id and by_id[i]["deletedAt"] is None and i != iid]

    current = claim.get("sessionId") if claim else None
    previous = [session_view(s) for s in sessions if s.get("id") != current]
    holder = next((s.get("agentName") for s in sessions if current and s.get("id") == current), None)
    live_family = [r for r in family if r["deletedAt"] is None]
    settings = store.settings
    variables: dict[str, Any] = {
        "issue": _issue(issue),
        "parent": _issue(parent) if parent else None,
        "siblings": live_family if parent_id else [],
        "children": [] if parent_id else live_family,
        "project": models.wire(PROJECT_FIELDS, project) if project else None,
        "goal": models.wire(GOAL_FIELDS, goal) if goal else None,
        "labels": [{"name": lb["name"], "color": lb["color"]} for lb in labels],
        "blocking": refs("blocks"),
        "blockedBy": refs("blocked_by"),
        "previousSessions": previous,
        "hasFailedSessions": has_failed(previous),
        "loopUrl": settings.loop_url.rstrip("/"),
        # Never the server's key (improvement 10): agents export their own key as this variable.
        "loopToken": settings.prompt_token_placeholder,
        "claim": {"sessionId": claim.get("sessionId"), "expiresAt": _ts(claim.get("expiresAt"))} if claim else None,
        # Where follow-up issues go: Loop nests one level, so a child's follow-ups are its siblings.
        # None when the parent is gone: then no issue can take children, so follow-ups go top level.
        "followUpParentId": (parent_id if parent and parent["deletedAt"] is None else None) if parent_id else iid,
        # The claiming key's name, so comments the agent posts are attributed to it.
        "agentName": (claim or {}).get("agentName") or holder or "agent",
        "meta": None,
    }
    return Facts(issue=issue, label_names=[lb["name"] for lb in labels],
                 has_failed_sessions=variables["hasFailedSessions"], variables=variables, generation=generation)


def _read(store: RedisStore, picked_keys: list[str], fields: list[str],
          whole_keys: list[str]) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """One ``prompt_rows`` call: HMGET ``fields`` of ``picked_keys``, HGETALL of ``whole_keys``."""
    keys = picked_keys + whole_keys
    if not keys:
        return [], []
    data = orjson.loads(store.scripts["prompt_rows"](keys=keys, args=[len(picked_keys), *fields]))
    if not isinstance(data, list):
        data = []
    n = len(picked_keys)
    picked = [[None if v is False else v for v in row] if isinstance(row, list) and row else [None] * len(fields)
              for row in data[:n]]
    whole = [dict(zip(row[::2], row[1::2], strict=True)) if isinstance(row, list) else {} for row in data[n:]]
    return picked, whole


def _pick_goal(project: Row | None, goal_ids: list[str], fields: list[Any]) -> str | None:
    """The project's goal: its ``goalId`` if set, else the first goal naming the project,
    preferring an active one (improvement 7: either link counts)."""
    if project is None:
        return None
    if project.get("goalId"):
        return str(project["goalId"])
    naming = [(gid, status) for gid, (pid, status) in zip(goal_ids, fields, strict=True) if pid == project["id"]]
    for gid, status in naming:
        if status == "active":
            return gid
    return naming[0][0] if naming else None

"""The hydration context of a prompt (contract 6.3), loaded in two round trips (``prompt_context.lua``,
then ``prompt_rows.lua``), every key declared in KEYS.

Everything a template sees is JSON-shaped: wire field names, ISO-8601 timestamps, ``None``
for absent values (which render empty).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from loop import models
from loop.clock import iso
from loop.models import GOAL_FIELDS, ISSUE_FIELDS, LABEL_FIELDS, PROJECT_FIELDS, Row
from loop.prompts import payload
from loop.prompts.fields import UNSUCCESSFUL_SESSION_STATUSES
from loop.redis_commands import Value
from loop.tunables import FAMILY_LIMIT, SESSION_LIMIT

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
REF_FIELDS = {k: ISSUE_FIELDS[k] for k in ("id", "number", "title", "status", "deletedAt")}


def _issue(row: Row) -> Row:
    return models.wire(ISSUE_FIELDS, row)


def _issue_view(store: RedisStore, row: Row) -> Row:
    """The issue as templates see it: its signal payload cut to a bounded excerpt
    (:mod:`loop.prompts.payload`), so no payload can make a prompt large."""
    view = _issue(row)
    if view.get("signalPayload") is None:
        return view
    base = store.settings.loop_url.rstrip("/")

    def full_at() -> str:
        # Only for a cut payload: the signal indexes are scored by the issue number.
        found = store.r.zrangebyscore(store.keys.signal_index(), row["number"], row["number"])
        return f"GET {base}/api/signals/{found[0]}" if found else f"GET {base}/api/issues/{row['id']}"

    view["signalPayload"] = payload.excerpt(view["signalPayload"], full_at)
    return view


def _hash(fields: Mapping[str, str], flat: Any) -> Row | None:
    """A flat HGETALL reply ``[field, value, ...]`` from cjson as the row's wire form, or ``None``
    for an empty reply (no such hash; cjson encodes it ``{}``)."""
    if not isinstance(flat, list) or not flat:
        return None
    return models.wire(fields, models.decode(fields, models.pairs(flat)))


def _flag(value: Any) -> str:
    return "1" if value else "0"


def _list(value: Any) -> list[Any]:
    """A JSON array from cjson, which encodes an empty one as ``{}``."""
    return value if isinstance(value, list) else []


def _pairs(flat: Any) -> dict[str, Any]:
    """A flat HGETALL reply ``[field, value, ...]`` as a dict."""
    return models.pairs(_list(flat))


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

    Two round trips, every key declared in KEYS (the Lua rule; Redis Cluster): ``prompt_context``
    reads what the issue row names (parent, project, the indexes), then ``prompt_rows`` the rows
    those name. A third (``prompt_rows`` again) only when a relation names an issue not read yet.

    ``sessions=None`` reads the issue's agent sessions in the same calls (what
    ``store.dispatch.sessions_for_issue`` returns, without its extra round trips). Rows are read
    through the models codec (``models.decode`` then ``models.wire``).
    """
    k = store.keys
    codec: Any = _session_reader() if sessions is None else None
    own_sessions = codec is not None and hasattr(k, "issue_sessions") and hasattr(k, "session")
    iid = issue["id"]
    parent_id = issue.get("parentId")
    project_id = issue.get("projectId")

    # Both blocking directions block (improvement 3): dispatch keeps, per issue, who blocks it and
    # whom it blocks, whichever issue the relation was recorded on. Without dispatch, only this
    # issue's own relations are known.
    edges = hasattr(k, "dispatch_blockers") and hasattr(k, "dispatch_blocking")
    placeholder = k.issue(iid)  # a declared key the script ignores (its flag is "0")
    # Dispatch keeps project -> goals (goals whose projectId is the project): a claim then reads
    # that project's goals, not every live goal.
    goal_map = sessions is None and hasattr(k, "dispatch_project_goals")  # None: dispatch reads them
    keys = [k.issue(parent_id or iid), k.issue_index("parent", parent_id or iid), k.issue_labels(iid),
            k.issue_relations(iid), k.row("project", project_id or ""), k.index("goals"),
            k.dispatch_blockers(iid) if edges else placeholder, k.dispatch_blocking(iid) if edges else placeholder,
            k.issue_sessions(iid) if own_sessions else placeholder,
            k.dispatch_project_goals(project_id or "") if goal_map else placeholder]
    # One more session than shown: the newest is usually the claim being rendered (left out below).
    args = [iid, _flag(parent_id), _flag(project_id), _flag(edges), _flag(own_sessions), FAMILY_LIMIT,
            SESSION_LIMIT + 1, _flag(goal_map)]
    ids = orjson.loads(store.scripts["prompt_context"](keys=keys, args=args))
    # Parent, project, goal and sessions are read straight into their wire form.
    parent = _hash(ISSUE_FIELDS, ids.get("parent"))
    project = _hash(PROJECT_FIELDS, ids.get("project"))
    family_ids = _list(ids.get("family"))
    blockers, blocking = sorted(_list(ids.get("blockers"))), sorted(_list(ids.get("blocking")))
    targets = list(dict.fromkeys(blockers + blocking))
    own_goal = bool(ids.get("goalId"))
    goal_ids = [ids["goalId"]] if own_goal else _list(ids.get("goals"))
    session_ids = _list(ids.get("sessions")) if own_sessions else []

    data = _rows(store, own_goal, project_id if project else None, family_ids, _list(ids.get("labels")),
                 _list(ids.get("relations")), goal_ids if project else [], session_ids, targets)
    generation = data.get("generation") or None
    goal = _hash(GOAL_FIELDS, data.get("goal")) if project else None
    family = [r for r in (models.wire_values(SUMMARY_FIELDS, v) for v in _list(data.get("family"))) if r]
    labels = [models.decode(LABEL_FIELDS, _pairs(r)) for r in _list(data.get("labels")) if r]
    relations = [(r[0], r[1]) for r in _list(data.get("relations"))]
    if sessions is None:
        sessions = [r for r in (_hash(codec.SESSION_FIELDS, v) for v in _list(data.get("sessions"))) if r
                    ] if own_sessions else []
    linked = {
        "blocked_by": [rid for kind, rid in relations if kind == "blocked_by"] + blockers,
        "blocks": [rid for kind, rid in relations if kind == "blocks"] + blocking,
    }
    refs_raw = list(zip(_list(data.get("targets")), _list(data.get("refs")), strict=True))
    # Relation targets are only known once the relation rows are read: fetch the ones phase 2 did
    # not already read (dispatch's blocker maps usually name them) in a third, rarely needed trip.
    missing = list(dict.fromkeys(rid for kind, rid in relations if kind in linked and rid not in targets))
    if missing:
        more = _rows(store, False, None, [], [], [], [], [], missing)
        refs_raw += zip(_list(more.get("targets")), _list(more.get("refs")), strict=True)
    by_id = {r["id"]: r for r in (models.wire_values(REF_FIELDS, v) for _, v in refs_raw) if r}

    def refs(kind: str) -> list[Row]:
        ids = dict.fromkeys(linked[kind])
        return [_ref(by_id[i]) for i in ids if i in by_id and by_id[i]["deletedAt"] is None and i != iid]

    current = claim.get("sessionId") if claim else None
    previous = [session_view(s) for s in sessions if s.get("id") != current]
    # How many earlier sessions there are in all: the list holds the SESSION_LIMIT most recent.
    total_sessions = int(ids.get("sessionsTotal") or 0) if own_sessions else len(sessions)
    previous_total = max(total_sessions - (len(sessions) - len(previous)), len(previous))
    previous = previous[-SESSION_LIMIT:]
    holder = next((s.get("agentName") for s in sessions if current and s.get("id") == current), None)
    live_family = [r for r in family if r["deletedAt"] is None]
    family_total = max(int(ids.get("familyTotal") or 0), len(live_family))
    settings = store.settings
    variables: dict[str, Any] = {
        "issue": _issue_view(store, issue),
        "parent": parent,
        "siblings": live_family if parent_id else [],
        "children": [] if parent_id else live_family,
        # How many others there are: the lists above hold at most FAMILY_LIMIT (the most recent).
        "siblingsTotal": family_total if parent_id else 0,
        "childrenTotal": 0 if parent_id else family_total,
        # Handlebars has no comparison: whether the list above is cut short.
        "siblingsTruncated": bool(parent_id) and family_total > len(live_family),
        "childrenTruncated": not parent_id and family_total > len(live_family),
        "project": project,
        "goal": goal,
        "labels": [{"name": lb["name"], "color": lb["color"]} for lb in labels],
        "blocking": refs("blocks"),
        "blockedBy": refs("blocked_by"),
        "previousSessions": previous,
        "previousSessionsTotal": previous_total,
        "previousSessionsTruncated": previous_total > len(previous),
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


def _rows(store: RedisStore, own_goal: bool, project_id: str | None, family: list[str], labels: list[str],
          relations: list[str], goals: list[str], sessions: list[str], targets: list[str]) -> dict[str, Any]:
    """One ``prompt_rows`` call: the rows of these ids, each key declared (see the script header)."""
    k = store.keys
    # Each builder once, then concatenation: the same keys, without a call per row.
    issue, label, relation, goal = k.issue(""), k.row("label", ""), k.row("relation", ""), k.row("goal", "")
    session = k.session("") if sessions else ""
    keys = [k.prompts_generation(), *[issue + i for i in family], *[label + i for i in labels],
            *[relation + i for i in relations], *[goal + i for i in goals], *[session + i for i in sessions],
            *[issue + i for i in targets]]
    args: list[Value] = [_flag(own_goal), project_id or "", len(family), len(labels), len(relations), len(goals), len(sessions),
            len(targets), len(SUMMARY_FIELDS), len(REF_FIELDS), *SUMMARY_FIELDS, *REF_FIELDS, *targets]
    data: dict[str, Any] = orjson.loads(store.scripts["prompt_rows"](keys=keys, args=args))
    return data

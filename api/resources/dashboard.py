"""``GET /api/dashboard/stats`` and ``GET /api/dashboard/activity`` (contract 1.12).

Both are served from indexes: counts are BITCOUNTs of the issue status/type bitmaps,
``completedLast24h`` a ZCOUNT of the completed-issues zset, and activity pages the zset of
root issues scored by their chain's latest activity. No request loads every issue.
(``/api/dashboard/prompts`` belongs to the prompt engine.)
"""

from __future__ import annotations

from typing import Any

import falcon

from api.http import Api, Op, Route, send
from loop import models
from loop.clock import iso
from loop.models import ISSUE_STATUSES, ISSUE_TYPES, Row
from loop.schema import Int, Query

DAY_MS = 24 * 3600 * 1000
ACTIVITY_QUERY = Query({"limit": Int(minimum=1, maximum=200, default=20)})


def stats(store: Any) -> dict[str, Any]:
    """Issue, goal and dispatch counts, excluding soft-deleted rows."""
    k = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.bitcount(k.issue_bits())
    for status in ISSUE_STATUSES:
        pipe.bitcount(k.issue_bits("status", status))
    for issue_type in ISSUE_TYPES:
        pipe.bitcount(k.issue_bits("type", issue_type))
    pipe.zcount(k.issues_completed(), store.now() - DAY_MS, "+inf")
    pipe.zrange(k.index("goals"), 0, -1)
    out = pipe.execute()
    total = int(out[0])
    by_status = dict(zip(ISSUE_STATUSES, map(int, out[1:1 + len(ISSUE_STATUSES)]), strict=True))
    rest = out[1 + len(ISSUE_STATUSES):]
    by_type = dict(zip(ISSUE_TYPES, map(int, rest[:len(ISSUE_TYPES)]), strict=True))
    completed, goal_ids = int(rest[len(ISSUE_TYPES)]), rest[len(ISSUE_TYPES) + 1]
    # Goals are few (a handful per team): one HGET of the status each, pipelined.
    gpipe = store.r.pipeline(transaction=False)
    for goal_id in goal_ids:
        gpipe.hget(k.row("goal", goal_id), "status")
    goal_statuses = [s for s in gpipe.execute() if s is not None] if goal_ids else []
    return {
        "issues": {
            "total": total,
            "byStatus": {s: n for s, n in by_status.items() if n > 0},
            "byType": {t: n for t, n in by_type.items() if n > 0},
        },
        "goals": {
            "total": len(goal_statuses),
            "active": goal_statuses.count("active"),
            "achieved": goal_statuses.count("achieved"),
        },
        "dispatch": {
            "queueDepth": by_status["todo"] + by_status["backlog"],
            "activeCount": by_status["in_progress"],
            "completedLast24h": completed,
        },
    }


def activity(store: Any, limit: int) -> list[Row]:
    """The ``limit`` most recently active root issues with their children and outgoing relations."""
    k = store.keys
    root_ids = store.r.zrevrange(k.issue_roots(), 0, limit - 1)
    roots = [r for r in store.issues.get_many(root_ids) if r["deletedAt"] is None and not r["parentId"]]
    pipe = store.r.pipeline(transaction=False)
    for root in roots:
        pipe.zrange(k.issue_index("parent", root["id"]), 0, -1)
    child_ids = pipe.execute() if roots else []
    chains = []
    for root, ids in zip(roots, child_ids, strict=True):
        children = [c for c in store.issues.get_many(ids) if c["deletedAt"] is None]
        latest = max([root["updatedAt"], *(c["updatedAt"] for c in children)])
        chains.append((latest, root, children))
    chains.sort(key=lambda chain: chain[0], reverse=True)
    wire = store.issues.wire
    return [
        {
            "root": wire(root),
            "children": [
                {"issue": wire(c),
                 "relations": [models.wire(models.RELATION_FIELDS, r) for r in store.relations.outgoing(c["id"])]}
                for c in children
            ],
            "latestActivity": iso(latest),
        }
        for latest, root, children in chains
    ]


class Stats:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        send(resp, {"data": stats(self.api.store)})


class Activity:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = self.api.query(req, ACTIVITY_QUERY)
        chains = activity(self.api.store, q["limit"])
        send(resp, {"data": chains, "total": len(chains)})


def routes(api: Api) -> list[Route]:
    t = "Dashboard"
    return [
        Route("/api/dashboard/stats", Stats(api), [
            Op("GET", "Issue, goal and dispatch counts", t),
        ]),
        Route("/api/dashboard/activity", Activity(api), [
            Op("GET", "Most recently active issue chains (root, children, their relations)", t,
               query=ACTIVITY_QUERY, responses={200: "OK", 400: "Invalid limit"}),
        ]),
    ]

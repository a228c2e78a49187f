"""The dashboard's read model: counts and recent activity, served from indexes.

Counts are BITCOUNTs of the issue status/type bitmaps, ``completedLast24h`` a ZCOUNT of the
completed-issues zset, and activity pages the zset of root issues scored by their chain's
latest activity. No call loads every issue. (The prompt dashboard belongs to the prompt engine.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loop import models
from loop.clock import iso
from loop.models import ISSUE_FIELDS, ISSUE_STATUSES, ISSUE_TYPES, Row
from loop.store.types import Pipe
from loop.tunables import CHILDREN_LIMIT

DAY_MS = 24 * 3600 * 1000

if TYPE_CHECKING:
    from loop.store.base import RedisStore


def _rows(pipe: Pipe, keys: list[str], fields: dict[str, str]) -> list[Row | None]:
    """The rows of ``keys`` read by one pipelined HGETALL each (``None`` where missing)."""
    for key in keys:
        pipe.hgetall(key)
    return [models.decode(fields, raw) if raw else None for raw in pipe.execute()] if keys else []


class DashboardService:
    """``stats()`` and ``activity(limit)``, as the wire shapes of contract 1.12."""

    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys

    def stats(self) -> dict[str, Any]:
        """Issue, goal and dispatch counts, excluding soft-deleted rows."""
        k, r = self.k, self.s.r
        pipe = r.pipeline(transaction=False)
        pipe.bitcount(k.issue_bits())
        for status in ISSUE_STATUSES:
            pipe.bitcount(k.issue_bits("status", status))
        for issue_type in ISSUE_TYPES:
            pipe.bitcount(k.issue_bits("type", issue_type))
        pipe.zcount(k.issues_completed(), self.s.now() - DAY_MS, "+inf")
        pipe.zrange(k.index("goals"), 0, -1)
        out = pipe.execute()
        total = int(out[0])
        by_status = dict(zip(ISSUE_STATUSES, map(int, out[1:1 + len(ISSUE_STATUSES)]), strict=True))
        rest = out[1 + len(ISSUE_STATUSES):]
        by_type = dict(zip(ISSUE_TYPES, map(int, rest[:len(ISSUE_TYPES)]), strict=True))
        completed, goal_ids = int(rest[len(ISSUE_TYPES)]), rest[len(ISSUE_TYPES) + 1]
        # Goals are few (a handful per team): one HGET of the status each, pipelined.
        gpipe = r.pipeline(transaction=False)
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

    def activity(self, limit: int) -> list[Row]:
        """The ``limit`` most recently active root issues with their children and outgoing relations.

        Four round trips whatever the backlog (roots; their rows and children; the children's rows
        and relation ids; the relation rows), and at most CHILDREN_LIMIT children per chain (the
        most recent, creation order; ``childrenTotal`` counts them all), so the cost is bounded by
        ``limit``.
        """
        k, r = self.k, self.s.r
        pipe = r.pipeline(transaction=False)
        scored = r.zrevrange(k.issue_roots(), 0, limit - 1, withscores=True)
        for root_id, _ in scored:
            pipe.hgetall(k.issue(root_id))
            pipe.zrevrange(k.issue_index("parent", root_id), 0, CHILDREN_LIMIT - 1)
            pipe.zcard(k.issue_index("parent", root_id))
        out = pipe.execute() if scored else []
        chains = []
        for (_, score), raw, recent, total in zip(scored, out[0::3], out[1::3], out[2::3], strict=True):
            root = models.decode(ISSUE_FIELDS, raw) if raw else None
            if root is not None and root["deletedAt"] is None and not root["parentId"]:
                chains.append((int(score), root, recent[::-1], int(total)))
        child_ids = [cid for *_, ids, _ in chains for cid in ids]
        for cid in child_ids:
            pipe.hgetall(k.issue(cid))
            pipe.zrange(k.issue_relations(cid), 0, -1)
        out = pipe.execute() if child_ids else []
        children = [models.decode(ISSUE_FIELDS, raw) if raw else None for raw in out[0::2]]
        relation_ids = out[1::2]
        relations = iter(_rows(pipe, [k.row("relation", rid) for ids in relation_ids for rid in ids],
                               models.RELATION_FIELDS))
        # Each child's relation rows, in the order read (a missing one, deleted meanwhile, is skipped).
        by_child = {cid: [r for r in (next(relations) for _ in ids) if r is not None]
                    for cid, ids in zip(child_ids, relation_ids, strict=True)}
        live = {c["id"]: c for c in children if c is not None and c["deletedAt"] is None}
        wire = self.s.issues.wire
        result = []
        for score, root, ids, total in chains:
            kids = [live[cid] for cid in ids if cid in live]
            # The roots index keeps the chain's latest activity (older children included).
            latest = max([score, root["updatedAt"], *(c["updatedAt"] for c in kids)])
            result.append((latest, {
                "root": wire(root),
                "children": [{"issue": wire(c),
                              "relations": [models.wire(models.RELATION_FIELDS, r) for r in by_child[c["id"]]]}
                             for c in kids],
                "childrenTotal": total,
                "latestActivity": iso(latest),
            }))
        result.sort(key=lambda chain: chain[0], reverse=True)
        return [chain for _, chain in result]

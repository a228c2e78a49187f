"""Scheduled issues (``notBefore``): kept out of the ready sets until their time comes.

A live ``todo`` issue whose ``notBefore`` is in the future when it is written sits in
``P:dispatch:scheduled`` (member ``"<id>|<projectId>"``, score = ``notBefore``) instead of the
ready sets (:class:`loop.dispatch.index.DispatchIssueHook` keeps both). When it falls due,
:meth:`Scheduler.promote_due` moves it into the ready sets with ``dispatch_promote.lua``; the claim
script answers ``"scheduled"`` when the head of the scheduled set is due so the claim promotes one
batch first, and the worker's 1 s scheduler tick (workers/leases.py) promotes the rest. No scan:
each call costs O(log S + batch) for S scheduled issues.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loop.dispatch import scoring
from loop.models import ISSUE_FIELDS, Row
from loop.tunables import SCHEDULE_BATCH

if TYPE_CHECKING:
    from loop.store.base import RedisStore

PROMOTE_SCRIPT = "dispatch_promote"


class Scheduler:
    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys

    def promote_due(self, limit: int = SCHEDULE_BATCH) -> tuple[int, int]:
        """Move up to ``limit`` due scheduled issues into the ready sets (when still eligible).

        Returns ``(moved, taken)``: how many entered the ready sets and how many left the
        scheduled set (a blocked, claimed or deleted issue leaves it without entering).
        """
        k, now = self.k, self.s.now()
        members: list[str] = self.s.r.zrangebyscore(k.dispatch_scheduled(), "-inf", now, start=0, num=limit)
        if not members:
            return 0, 0
        ids = [scoring.parse_member(m)[0] for m in members]
        # The score needs priority, type and createdAt; the script re-checks status and time itself.
        rows = {r["id"]: r for r in self.s.get_rows("issue", ISSUE_FIELDS, ids)}
        keys = [k.dispatch_scheduled(), k.dispatch_goal_bonus(), k.dispatch_ready()]
        args: list[str | int] = [now, len(members)]
        for m, iid in zip(members, ids, strict=True):
            pid = scoring.parse_member(m)[1]
            row = rows.get(iid)
            base = scoring.stored_score(row, 0) if row is not None and row["createdAt"] is not None else 0.0
            keys += [k.issue(iid), k.dispatch_state(iid), k.dispatch_ready(pid)]
            args += [m, repr(base), pid or ""]
        moved, taken = self.s.scripts[PROMOTE_SCRIPT](keys=keys, args=args)
        return int(moved), int(taken)

    def promote_all(self, max_batches: int) -> int:
        """Promote batch after batch until none is due (at most ``max_batches``); how many moved."""
        total = 0
        for _ in range(max_batches):
            moved, taken = self.promote_due()
            total += moved
            if taken < SCHEDULE_BATCH:
                break
        return total

    def scheduled(self, limit: int, offset: int) -> tuple[list[Row], int]:
        """One page of the scheduled issues in due order (soonest first), and the total."""
        self.promote_all(1)
        key = self.k.dispatch_scheduled()
        pipe = self.s.r.pipeline(transaction=False)
        pipe.zrange(key, offset, offset + limit - 1)
        pipe.zcard(key)
        members, total = pipe.execute()
        rows = self.s.get_rows("issue", ISSUE_FIELDS, [scoring.parse_member(m)[0] for m in members])
        return rows, int(total)

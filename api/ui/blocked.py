"""The queue page's blocked issues: one page of ``P:dispatch:blocked`` (newest blocks first), each
with the issues blocking it, in three pipelined round trips whatever the backlog."""

from __future__ import annotations

from typing import Any

from loop import models
from loop.clock import iso
from loop.models import ISSUE_FIELDS, RESOLVED_STATUSES
from loop.runtime import Loop
from loop.tunables import UI_BLOCKERS_SHOWN


def blocked_page(store: Loop, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """``([{"issue", "since", "blockers": [{"issue", "unresolved"}], "blockersTotal"}], total)``.

    The index holds every issue with an unresolved blocker (a done or deleted one too: the
    blocked count is kept whatever the blocked issue's state); deleted ones are left out of the
    page. At most ``UI_BLOCKERS_SHOWN`` blockers are read per issue."""
    k, r = store.keys, store.r
    pipe = r.pipeline(transaction=False)
    pipe.zrevrange(k.dispatch_blocked(), offset, offset + limit - 1, withscores=True)
    pipe.zcard(k.dispatch_blocked())
    scored, total = pipe.execute()
    for iid, _ in scored:
        pipe.hgetall(k.issue(iid))
        pipe.hkeys(k.dispatch_blockers(iid))
    out = pipe.execute() if scored else []
    entries = []
    for (_, since), raw, blocker_ids in zip(scored, out[0::2], out[1::2], strict=True):
        row = models.decode(ISSUE_FIELDS, raw) if raw else None
        if row is not None and row["deletedAt"] is None:
            entries.append((row, int(since), sorted(blocker_ids)))
    shown = [bid for _, _, ids in entries for bid in ids[:UI_BLOCKERS_SHOWN]]
    for bid in shown:
        pipe.hgetall(k.issue(bid))
    blockers = {bid: models.decode(ISSUE_FIELDS, raw)
                for bid, raw in zip(shown, pipe.execute() if shown else [], strict=True) if raw}
    wire = store.issues.wire
    items = []
    for row, since, ids in entries:
        rows = [blockers[b] for b in ids[:UI_BLOCKERS_SHOWN] if b in blockers]
        items.append({
            "issue": wire(row), "since": iso(since), "blockersTotal": len(ids),
            "blockers": [{"issue": wire(b), "unresolved": b["deletedAt"] is None and b["status"] not in RESOLVED_STATUSES}
                         for b in rows]})
    return items, int(total)

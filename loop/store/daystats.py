"""Issue event counters per UTC day and hour: the overview's funnel and charts in bounded reads.

:class:`DayStatsHook` runs inside every issue write's MULTI and, when an issue is created or
becomes ``done``, HINCRBYs ``created:<type>`` / ``done:<type>`` in that day's and that hour's
hash, and when a monitor concludes, ``outcome:<validated|invalidated|inconclusive>`` (the funnel's
last column: monitors only, since the hypothesis they verify receives the same outcome) (``P:stats:day:<YYYY-MM-DD>``, ``P:stats:hour:<YYYY-MM-DDTHH>``, with a TTL). They count
*events*: a deleted issue stays counted, an issue completed twice (re-opened) counts twice. Not
derivable from the rows (only the latest completion is kept), so ``loop admin check`` does not
audit them; they are state, approximate by design. :meth:`DayStats.window` reads 24 hourly and
7 daily hashes in one pipelined round trip, whatever the backlog.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from loop.models import ISSUE_TYPES, OUTCOMES, Row
from loop.scripts import eval_body
from loop.store.types import IssueHook, Pipe
from loop.tunables import STATS_DAY_TTL_DAYS, STATS_HOUR_TTL_HOURS

if TYPE_CHECKING:
    from loop.keys import Keys
    from loop.store.base import RedisStore

EVENTS = ("created", "done")
#: A counter's two HINCRBYs and their EXPIREs (``loop/lua/stats_count.lua``).
COUNT_SCRIPT = "stats_count"
HOURS, DAYS = 24, 7


@functools.lru_cache(maxsize=4)
def _hour_stamps(hour: int) -> tuple[str, str]:
    at = datetime.fromtimestamp(hour * 3600, UTC)
    return at.strftime("%Y-%m-%d"), at.strftime("%Y-%m-%dT%H")


def _stamps(ms: int) -> tuple[str, str]:
    """``(day, hour)`` bucket names of an epoch-ms instant (UTC); formatted once per hour (every
    issue create asks)."""
    return _hour_stamps(ms // 3_600_000)


class DayStatsHook(IssueHook):
    """Counts creations and completions; reads nothing, so it costs no round trip."""

    def __init__(self, keys: Keys) -> None:
        self.k = keys

    def stage(self, pipe: Pipe, old: Row | None, new: Row, state: Any) -> None:
        if new["deletedAt"] is not None:
            return
        if old is None:
            self._count(pipe, "created", new["type"], int(new["createdAt"]))
        completed = new["status"] == "done" and new["completedAt"] is not None
        if completed and (old is None or old["status"] != "done"):
            self._count(pipe, "done", new["type"], int(new["completedAt"]))
        concluded = new["type"] == "monitor" and new["outcome"] is not None
        if concluded and (old is None or old["outcome"] != new["outcome"]):
            self._count(pipe, "outcome", new["outcome"], int(new["updatedAt"]))

    def _count(self, pipe: Pipe, event: str, kind: str, ms: int) -> None:
        # One queued command (stats_count.lua), not 2 HINCRBYs and 2 EXPIREs: issue creates are hot.
        day, hour = _stamps(ms)
        eval_body(pipe, COUNT_SCRIPT, [self.k.stats_bucket("day", day), self.k.stats_bucket("hour", hour)],
                  f"{event}:{kind}", STATS_DAY_TTL_DAYS * 86400, STATS_HOUR_TTL_HOURS * 3600)


def _totals(raw: dict[str, str]) -> dict[str, dict[str, int]]:
    """``{event: {type: n}, "outcome": {outcome: n}}`` of one bucket (absent fields are 0)."""
    out = {e: {t: int(raw.get(f"{e}:{t}") or 0) for t in ISSUE_TYPES} for e in EVENTS}
    out["outcome"] = {o: int(raw.get(f"outcome:{o}") or 0) for o in OUTCOMES}
    return out


class DayStats:
    """The overview's windows, read from the counters."""

    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys

    def window(self) -> dict[str, Any]:
        """Counts of the last 24 hours (the current hour and the 23 before) and the last 7 days
        (today and the 6 before), per type, plus the per-bucket series the charts draw.

        ``{"day": {"created": {type: n}, "done": {type: n}}, "week": {...},
        "hours": [{"label", "created", "done"}] (24, oldest first), "days": [...] (7)}``."""
        now = datetime.fromtimestamp(self.s.now() / 1000, UTC)
        hours = [now - timedelta(hours=n) for n in range(HOURS - 1, -1, -1)]
        days = [now - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]
        pipe = self.s.r.pipeline(transaction=False)
        for h in hours:
            pipe.hgetall(self.k.stats_bucket("hour", h.strftime("%Y-%m-%dT%H")))
        for d in days:
            pipe.hgetall(self.k.stats_bucket("day", d.strftime("%Y-%m-%d")))
        out = [_totals(raw) for raw in pipe.execute()]
        by_hour, by_day = out[:HOURS], out[HOURS:]

        def summed(buckets: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
            return {e: {t: sum(b[e][t] for b in buckets) for t in buckets[0][e]} for e in (*EVENTS, "outcome")}

        def series(buckets: list[dict[str, dict[str, int]]], labels: list[str]) -> list[dict[str, Any]]:
            return [{"label": label, **{e: sum(b[e].values()) for e in EVENTS}}
                    for label, b in zip(labels, buckets, strict=True)]

        return {"day": summed(by_hour), "week": summed(by_day),
                "hours": series(by_hour, [h.strftime("%H:00") for h in hours]),
                "days": series(by_day, [d.strftime("%a %d") for d in days])}

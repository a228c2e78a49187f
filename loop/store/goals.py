"""Goals: measurable targets, optionally tied to a project, and the readings that measure them.

A reading (``{value, at, source}``) is one member of ``P:goal:<id>:readings`` (JSON, score =
``at`` in ms). Only the last :data:`GOAL_READINGS_KEPT` by ``at`` are kept; every reading also
adds to its UTC day's count and sum in ``P:goal:<id>:daily`` (two fields a day), so the long
history survives as daily means at a bounded cost.

A reading is written in ONE MULTI with the goal row it moves: the latest reading by ``at``
becomes ``currentValue`` (an older reading arriving late is kept but overrides nothing), the
goal's ``trend`` (last few readings) is refreshed, ``direction`` is inferred from the target
and the first reading when unset, and an ``active`` goal that meets its target in its direction
becomes ``achieved`` (and back). The goal's row hooks (dispatch's goal bonus) run in that MULTI
too. :meth:`Goals.prepare_reading` / :meth:`Goals.stage_reading` let a signal write carry a
reading in its own transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from loop import models
from loop.clock import iso
from loop.errors import NotFound
from loop.ids import new_id
from loop.models import GOAL_FIELDS, Row
from loop.store.rows import RowHook, RowService
from loop.store.types import Pipe, is_id
from loop.tunables import GOAL_READINGS_KEPT, GOAL_TREND_READINGS

if TYPE_CHECKING:
    from loop.store.base import RedisStore

#: Goal statuses a reading moves between (``abandoned`` stays put).
MEASURED = ("active", "achieved")


@dataclass(frozen=True)
class Reading:
    value: float
    at: int  # epoch ms
    source: str | None = None


@dataclass
class ReadingWrite:
    """A reading prepared under WATCH (goal row and readings read), staged after MULTI."""

    reading: Reading
    old: Row
    new: Row
    seq: Any
    states: tuple[Any, ...]


class MetricIndex(RowHook):
    """Keeps ``P:goals:metric:<metric>`` (live goals by metric) in every goal write's MULTI,
    so a metric signal finds its goals without reading every goal."""

    def __init__(self, goals: Goals) -> None:
        self.goals = goals

    def stage(self, pipe: Pipe, old: Row | None, new: Row, state: Any) -> None:
        k = self.goals.k
        before = old["metric"] if old is not None and old["deletedAt"] is None else None
        after = new["metric"] if new["deletedAt"] is None else None
        if before == after:
            return
        if before:
            pipe.srem(k.goals_by_metric(before), new["id"])
        if after:
            pipe.sadd(k.goals_by_metric(after), new["id"])


def meets(goal: Mapping[str, Any], value: float) -> bool:
    """Whether ``value`` reaches the goal's target in its direction."""
    target = goal.get("targetValue")
    if target is None or goal.get("direction") not in models.GOAL_DIRECTIONS:
        return False
    return bool(value >= target) if goal["direction"] == "increase" else bool(value <= target)


def status_for(goal: Mapping[str, Any]) -> str:
    """``achieved`` when the current value meets the target, ``active`` otherwise (measured goals only)."""
    if goal["status"] not in MEASURED or goal.get("currentValue") is None:
        return str(goal["status"])
    return "achieved" if meets(goal, goal["currentValue"]) else "active"


def reading_wire(member: str, score: float) -> Row:
    data = orjson.loads(member)
    return {"value": data["v"], "at": iso(int(score)), "source": data.get("s")}


class Goals(RowService):
    kind = "goal"
    index_name = "goals"
    fields = GOAL_FIELDS
    not_found = "Goal not found"
    status_indexed = True  # GET /api/goals?status=

    def __init__(self, store: RedisStore) -> None:
        super().__init__(store)
        self.hooks.append(MetricIndex(self))

    def create(self, data: Mapping[str, Any]) -> Row:
        return super().create({"status": "active", **data})

    def update(self, row_id: str, changes: Mapping[str, Any]) -> Row:
        """A PATCH; a new target or direction re-evaluates achieved <-> active in the same write."""
        if {"targetValue", "direction", "currentValue"} & changes.keys():
            def settle(old: Row, new: Row) -> None:
                if "status" not in changes:
                    new["status"] = status_for(new)
            return self._update(row_id, changes, settle)
        return super().update(row_id, changes)

    def _update(self, row_id: str, changes: Mapping[str, Any], settle: Callable[[Row, Row], None]) -> Row:
        key = self.k.row(self.kind, row_id)

        def tx(pipe: Pipe) -> Row:
            old = self._live(pipe, key)
            new = {**old, **{k: v for k, v in changes.items() if k in self.fields}, "updatedAt": self.s.now()}
            settle(old, new)
            seq = pipe.zscore(self.index, row_id) if new["status"] != old["status"] else None
            states = self._prepare(pipe, old, new)
            pipe.multi()
            self._stage_row(pipe, old, new, seq, states)
            return new

        return self._written(self.s.transact(tx, key))

    def _live(self, pipe: Pipe, key: str) -> Row:
        raw = pipe.hgetall(key)
        row = models.decode(self.fields, raw) if raw else None
        if row is None or row["deletedAt"] is not None:
            raise NotFound(self.not_found)
        return row

    def _stage_row(self, pipe: Pipe, old: Row, new: Row, seq: Any, states: tuple[Any, ...]) -> None:
        self.s.write_row(pipe, self.kind, self.fields, new["id"], {k: v for k, v in new.items() if old[k] != v})
        if new["status"] != old["status"]:
            pipe.zrem(self.k.status_index(self.index_name, old["status"]), new["id"])
            pipe.zadd(self.k.status_index(self.index_name, new["status"]), {new["id"]: seq or 0})
        self._stage(pipe, old, new, states)

    # ------------------------------------------------------------------ readings
    def prepare_reading(self, pipe: Pipe, goal_id: str, reading: Reading) -> ReadingWrite:
        """Read (under WATCH) what recording ``reading`` changes; NotFound for a missing goal."""
        if not is_id(goal_id):
            raise NotFound(self.not_found)
        key, readings = self.k.row(self.kind, goal_id), self.k.goal_readings(goal_id)
        pipe.watch(key, readings)
        old = self._live(pipe, key)
        recent = pipe.zrevrange(readings, 0, GOAL_TREND_READINGS - 1, withscores=True)
        new = dict(old)
        if new["direction"] is None and new["targetValue"] is not None:
            earliest = pipe.zrange(readings, 0, 0, withscores=True)
            first = (orjson.loads(earliest[0][0])["v"], earliest[0][1]) if earliest else (reading.value, reading.at)
            if reading.at < first[1]:
                first = (reading.value, reading.at)
            new["direction"] = "increase" if new["targetValue"] >= first[0] else "decrease"
        trend = [{"value": orjson.loads(m)["v"], "at": int(s)} for m, s in recent]
        trend.append({"value": reading.value, "at": reading.at})
        trend.sort(key=lambda r: -r["at"])  # stable: a tie keeps the stored reading first
        new["trend"] = [{"value": t["value"], "at": iso(t["at"])} for t in trend[:GOAL_TREND_READINGS]]
        if not recent or reading.at >= int(recent[0][1]):  # the latest by `at`: it is the current value
            new["currentValue"], new["lastReadingAt"] = reading.value, reading.at
        new["status"] = status_for(new)
        new["updatedAt"] = self.s.now()
        seq = pipe.zscore(self.index, goal_id) if new["status"] != old["status"] else None
        return ReadingWrite(reading, old, new, seq, self._prepare(pipe, old, new))

    def stage_reading(self, pipe: Pipe, w: ReadingWrite) -> None:
        """Queue the reading, its day's aggregate, the trim and the goal row (after MULTI)."""
        goal_id, r = w.new["id"], w.reading
        readings = self.k.goal_readings(goal_id)
        # A short random tag keeps equal readings (same value, time and source) distinct members.
        member = {"v": r.value, "t": new_id()[:8], **({"s": r.source} if r.source else {})}
        pipe.zadd(readings, {orjson.dumps(member).decode(): r.at})
        pipe.zremrangebyrank(readings, 0, -(GOAL_READINGS_KEPT + 1))
        day = datetime.fromtimestamp(r.at / 1000, tz=UTC).strftime("%Y-%m-%d")
        pipe.hincrby(self.k.goal_daily(goal_id), f"{day}:n", 1)
        pipe.hincrbyfloat(self.k.goal_daily(goal_id), f"{day}:sum", r.value)
        self._stage_row(pipe, w.old, w.new, w.seq, w.states)

    def record(self, goal_id: str, reading: Reading) -> Row:
        """Record one reading; the goal as it is after it."""

        def tx(pipe: Pipe) -> Row:
            w = self.prepare_reading(pipe, goal_id, reading)
            pipe.multi()
            self.stage_reading(pipe, w)
            return w.new

        return self._written(self.s.transact(tx))

    def readings(self, goal_id: str, limit: int, offset: int) -> tuple[builtins.list[Row], int]:
        """The goal's kept readings, newest (by ``at``) first, one page and the total kept."""
        self.get_live(goal_id)
        pipe = self.s.r.pipeline(transaction=False)
        pipe.zrevrange(self.k.goal_readings(goal_id), offset, offset + limit - 1, withscores=True)
        pipe.zcard(self.k.goal_readings(goal_id))
        page, total = pipe.execute()
        return [reading_wire(m, s) for m, s in page], int(total)

    def by_metric(self, metric: str) -> builtins.list[str]:
        """Ids of the live goals measured by ``metric`` (one SMEMBERS)."""
        return sorted(self.s.r.smembers(self.k.goals_by_metric(metric)))



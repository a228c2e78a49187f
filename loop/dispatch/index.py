"""Keeps the ready sets and blocker counts exact, inside every issue and relation write.

Invariant (checked by the stateful test): an issue is in ``P:dispatch:ready`` (and in its
project's ready set) iff it is live, ``todo``, has no unresolved blocker and is due (``notBefore``
null or past). A live ``todo`` issue whose ``notBefore`` was in the future when written is in
``P:dispatch:scheduled`` instead, until it falls due (loop/dispatch/schedule.py moves it): blocking
and scheduling combine, an issue is ready only when both allow it. The blocked
count of an issue is the number of *distinct* unresolved issues blocking it, via ``blocks``
rows on the blocker or ``blocked_by`` rows on the blocked issue (improvement 3). A blocker is
resolved when done, canceled or deleted. Both hooks run inside the WATCH/MULTI transaction of
the write, so a blocker's resolution and its dependents' release happen in one atomic step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loop import models
from loop.dispatch import scoring, sessions
from loop.errors import BusinessRuleError
from loop.models import ISSUE_FIELDS, RESOLVED_STATUSES, Row
from loop.scripts import eval_body
from loop.store.relations import RelationHook
from loop.store.types import ATTEMPT_BLOCKING, IssueHook, Pipe, SessionClose, WriteIntent
from loop.tunables import CYCLE_CHECK_LIMIT

if TYPE_CHECKING:
    from loop.store.base import RedisStore

#: ``(member, projectId, stored score without goal bonus)`` of an issue that belongs in the ready sets.
Entry = tuple[str, str | None, float]
ENTER_SCRIPT = "dispatch_enter"
BLOCKING_TYPES = ("blocks", "blocked_by")


def stage_script(pipe: Pipe, name: str, keys: list[str], args: list[Any]) -> None:
    """Queue ``loop/lua/<name>.lua`` on a MULTI pipeline (:func:`loop.scripts.eval_body`)."""
    eval_body(pipe, name, keys, *args)


def eligible(row: Row | None, blocked: int) -> bool:
    return row is not None and row["deletedAt"] is None and row["status"] == "todo" and blocked <= 0


def due(row: Row, now: int) -> bool:
    """Whether scheduling allows dispatching the issue at ``now`` (no ``notBefore``, or past)."""
    return row["notBefore"] is None or row["notBefore"] <= now


def unresolved(row: Row | None) -> bool:
    return row is not None and row["deletedAt"] is None and row["status"] not in RESOLVED_STATUSES


def blocking_pair(relation: Row) -> tuple[str, str] | None:
    """``(blocker, blocked)`` of a relation row that blocks, else ``None``."""
    if relation["type"] == "blocks":
        return relation["issueId"], relation["relatedIssueId"]
    if relation["type"] == "blocked_by":
        return relation["relatedIssueId"], relation["issueId"]
    return None


@dataclass
class Plan:
    """Writes decided while watching, queued after MULTI."""

    moves: list[tuple[Entry | None, Entry | None]] = field(default_factory=list)
    blocked: dict[str, int] = field(default_factory=dict)
    close: tuple[dict[str, str], str, str | None, str | None] | None = None
    strike: str | None = None
    reset_strikes: str | None = None
    label: tuple[str, str, int] | None = None
    #: ``(blocker, blocked, relation rows between them after the write)``
    edges: list[tuple[str, str, int]] = field(default_factory=list)
    #: the write may change the issue's scheduled-set membership
    schedule: bool = False


class Index:
    """Shared reads and writes of the ready sets."""

    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys
        #: told ``(member, projectId)`` of every issue a write stages into the ready sets
        self.on_enter: Callable[[str, str | None], None] | None = None

    def bonuses(self, project_ids: Iterable[str | None]) -> dict[str, int]:
        ids = sorted({p for p in project_ids if p})
        if not ids:
            return {}
        values = self.s.r.hmget(self.k.dispatch_goal_bonus(), ids)
        return {p: int(v or 0) for p, v in zip(ids, values, strict=True)}

    def entry(self, row: Row | None, blocked: int = 0) -> Entry | None:
        """Where the issue belongs in the ready sets (score without goal bonus), if anywhere."""
        if row is None or not eligible(row, blocked) or not due(row, self.s.now()):
            return None
        pid = row["projectId"]
        return scoring.member(row["id"], pid), pid, scoring.stored_score(row, 0)

    def stage_move(self, pipe: Pipe, before: Entry | None, after: Entry | None) -> None:
        """Queue the ready-set change; entering goes through ``dispatch_enter.lua``, which adds
        the project's goal bonus and skips blocked issues at EXEC time."""
        if before == after:
            return
        if before is not None and (after is None or after[0] != before[0]):
            pipe.zrem(self.k.dispatch_ready(), before[0])
            if before[1]:
                pipe.zrem(self.k.dispatch_ready(before[1]), before[0])
        if after is not None:
            member, pid, base = after
            iid = scoring.parse_member(member)[0]
            keys = [self.k.dispatch_goal_bonus(), self.k.dispatch_ready(), self.k.dispatch_ready(pid),
                    self.k.dispatch_state(iid)]
            stage_script(pipe, ENTER_SCRIPT, keys, [member, repr(base), pid or ""])
            if self.on_enter is not None:
                self.on_enter(member, pid)

    def schedule(self, row: Row | None) -> tuple[str, int] | None:
        """``(member, notBefore)`` when the issue belongs in the scheduled set (live, todo, not yet due)."""
        if row is None or row["deletedAt"] is not None or row["status"] != "todo" or due(row, self.s.now()):
            return None
        return scoring.member(row["id"], row["projectId"]), int(row["notBefore"])

    def stage_schedule(self, pipe: Pipe, old: Row | None, new: Row) -> None:
        """Queue the scheduled-set change of an issue write (any member of ``old`` with a
        ``notBefore`` is removed unless it stays: a due one may still be waiting there)."""
        after = self.schedule(new)
        if old is not None and old["notBefore"] is not None:
            before = scoring.member(old["id"], old["projectId"])
            if after is None or after[0] != before:
                pipe.zrem(self.k.dispatch_scheduled(), before)
        if after is not None:
            pipe.zadd(self.k.dispatch_scheduled(), {after[0]: after[1]})

    def stage_blocked(self, pipe: Pipe, issue_id: str, count: int) -> None:
        # P:dispatch:blocked lets the dashboard page the blocked issues (NX: "since" is the first block).
        if count > 0:
            pipe.hset(self.k.dispatch_state(issue_id), "blocked", count)
            pipe.zadd(self.k.dispatch_blocked(), {issue_id: self.s.now()}, nx=True)
        else:
            pipe.hdel(self.k.dispatch_state(issue_id), "blocked")
            pipe.zrem(self.k.dispatch_blocked(), issue_id)

    def stage(self, pipe: Pipe, plan: Plan) -> None:
        # Blocked counts first: the enter script reads them.
        for dep_id, count in plan.blocked.items():
            self.stage_blocked(pipe, dep_id, count)
        for before, after in plan.moves:
            self.stage_move(pipe, before, after)

    def read_dependents(self, pipe: Pipe, ids: list[str]) -> list[tuple[Row | None, int]]:
        """Rows and blocked counts of ``ids``, after watching them on ``pipe``."""
        if not ids:
            return []
        pipe.watch(*[k for i in ids for k in (self.k.issue(i), self.k.dispatch_state(i))])
        # Batched on another connection: the WATCH above already guards these keys.
        reader = self.s.r.pipeline(transaction=False)
        for i in ids:
            reader.hgetall(self.k.issue(i))
            reader.hget(self.k.dispatch_state(i), "blocked")
        out = reader.execute()
        return [
            (models.decode(ISSUE_FIELDS, out[2 * n]) if out[2 * n] else None, int(out[2 * n + 1] or 0))
            for n in range(len(ids))
        ]

    def plan_dependent(self, plan: Plan, row: Row | None, blocked: int, delta: int, issue_id: str) -> None:
        after = blocked + delta
        plan.blocked[issue_id] = after
        plan.moves.append((self.entry(row, blocked), self.entry(row, after)))


#: Issue fields whose change can move the issue in or out of the ready sets, or rescore it.
DISPATCH_FIELDS = ("status", "deletedAt", "priority", "type", "projectId", "createdAt", "notBefore")


class DispatchIssueHook(IssueHook):
    """Ready-set membership, rescoring, blocker resolution and session closing for issue writes.

    Reads only what the write can affect: nothing for a create or for a change of other
    fields, the active session when the issue leaves ``in_progress``, the blocked issues when
    it becomes resolved or unresolved.
    """

    def __init__(self, index: Index) -> None:
        self.ix = index
        self.k = index.k

    def prepare(self, pipe: Pipe, old: Row | None, new: Row, intent: WriteIntent) -> Plan:
        plan = Plan()
        if old is not None and all(old[f] == new[f] for f in DISPATCH_FIELDS):
            return plan
        iid = new["id"]
        plan.schedule = (old is not None and old["notBefore"] is not None) or new["notBefore"] is not None
        # The issue's own blocked count is checked by the enter script at EXEC time.
        plan.moves.append((self.ix.entry(old), self.ix.entry(new)))
        if old is not None and unresolved(old) != unresolved(new):
            dependents = self._watched_dependents(pipe, iid)
            delta = 1 if unresolved(new) else -1
            for dep_id, (row, count) in zip(dependents, self.ix.read_dependents(pipe, dependents), strict=True):
                self.ix.plan_dependent(plan, row, count, delta, dep_id)
        if old is not None:
            self._plan_session(pipe, plan, old, new, intent.close)
        return plan

    def _watched_dependents(self, pipe: Pipe, iid: str) -> list[str]:
        """The issues ``iid`` blocks, sorted: as this attempt read them already, else read under WATCH."""
        memo: dict[object, object] | None = getattr(pipe, "attempt_reads", None)
        known = memo.get((ATTEMPT_BLOCKING, iid)) if memo is not None else None
        if isinstance(known, list):
            return known
        pipe.watch(self.k.dispatch_blocking(iid))
        return sorted(pipe.hkeys(self.k.dispatch_blocking(iid)))

    def _plan_session(self, pipe: Pipe, plan: Plan, old: Row, new: Row, intent: SessionClose | None) -> None:
        k, iid = self.k, new["id"]
        leaving = old["status"] == "in_progress" and (new["deletedAt"] is not None or new["status"] != "in_progress")
        if leaving:
            sid, session = sessions.watched_active(pipe, k, iid)
            if not sid:
                return
            if session.get("status") != "active":
                return
            if intent is not None and intent.session_id == sid:
                outcome, reason = intent.outcome, intent.reason
                if intent.label_id:
                    plan.label = (iid, intent.label_id, int(new["number"]))
            else:
                outcome, reason = sessions.default_outcome(new)
            summary = new["agentSummary"] if outcome == "completed" else None
            plan.close = (session, outcome, reason, summary)
            if outcome in sessions.STRIKE_OUTCOMES:
                plan.strike = iid
        elif intent is None and new["deletedAt"] is None and new["status"] == "todo" and old["status"] != "todo":
            # A person re-queued the issue (e.g. a parked one): it gets a fresh set of strikes.
            plan.reset_strikes = iid

    def stage(self, pipe: Pipe, old: Row | None, new: Row, plan: Plan) -> None:
        self.ix.stage(pipe, plan)
        if plan.schedule:
            self.ix.stage_schedule(pipe, old, new)
        if plan.close is not None:
            session, outcome, reason, summary = plan.close
            sessions.stage_close(pipe, self.k, session, outcome, self.ix.s.now(), reason, summary)
        if plan.strike:
            pipe.hincrby(self.k.dispatch_state(plan.strike), "strikes", 1)
        if plan.reset_strikes:
            pipe.hdel(self.k.dispatch_state(plan.reset_strikes), "strikes")
        if plan.label is not None:
            iid, label_id, number = plan.label
            pipe.sadd(self.k.issue_labels(iid), label_id)
            pipe.zadd(self.k.issue_index("label", label_id), {iid: number})


class DispatchRelationHook(RelationHook):
    """Counts blocking edges per (blocker, blocked) pair; the first/last edge (un)blocks."""

    def __init__(self, index: Index) -> None:
        self.ix = index
        self.k = index.k

    def prepare(self, pipe: Pipe, relation: Row, added: bool) -> Plan | None:
        pair = blocking_pair(relation)
        if pair is None:
            return None
        blocker, blocked_id = pair
        k = self.k
        if added:
            self.refuse_cycle(pipe, blocker, blocked_id)
        pipe.watch(k.issue(blocker), k.dispatch_blockers(blocked_id))
        edges = int(pipe.hget(k.dispatch_blockers(blocked_id), blocker) or 0)
        raw = pipe.hgetall(k.issue(blocker))
        blocker_row = models.decode(ISSUE_FIELDS, raw) if raw else None
        plan = Plan(edges=[(blocker, blocked_id, edges + (1 if added else -1))])
        first_or_last = (edges == 0) if added else (edges == 1)
        if first_or_last and unresolved(blocker_row):
            ((row, count),) = self.ix.read_dependents(pipe, [blocked_id])
            self.ix.plan_dependent(plan, row, count, 1 if added else -1, blocked_id)
        return plan

    def refuse_cycle(self, pipe: Pipe, blocker: str, blocked_id: str) -> None:
        """422 if ``blocker`` is reachable from ``blocked_id`` through blocking relations, i.e. if
        the new edge would close a cycle (every issue on it would stay blocked forever).

        Breadth-first over ``P:dispatch:blocking:<id>``, one level per round trip, every map read
        WATCHed: a relation written meanwhile on the path aborts this write and the retry sees it,
        so two writes cannot close a cycle between them. Resolved issues count (reopening one
        would strand the rest). More than ``CYCLE_CHECK_LIMIT`` issues visited: refused as well,
        since an unchecked edge could close a cycle.
        """
        seen, level = {blocked_id}, [blocked_id]
        while level:
            keys = [self.k.dispatch_blocking(i) for i in level]
            pipe.watch(*keys)
            reader = self.ix.s.r.pipeline(transaction=False)  # the WATCH above guards these keys
            for key in keys:
                reader.hkeys(key)
            level = []
            for successors in reader.execute():
                for nxt in successors:
                    if nxt == blocker:
                        raise BusinessRuleError(
                            "This relation would create a blocking cycle: the blocked issue already "
                            "blocks the blocker (directly or through other issues)")
                    if nxt not in seen:
                        seen.add(nxt)
                        level.append(nxt)
            if len(seen) > CYCLE_CHECK_LIMIT:
                raise BusinessRuleError(
                    f"The blocking graph behind this relation is too large to check for cycles "
                    f"(more than {CYCLE_CHECK_LIMIT} issues); split the chain or remove relations first")

    def stage(self, pipe: Pipe, relation: Row, added: bool, plan: Plan | None) -> None:
        if plan is None:
            return
        for blocker, blocked_id, count in plan.edges:
            # The two maps are always written together, so watching one of them guards both.
            for key, fld in ((self.k.dispatch_blockers(blocked_id), blocker),
                             (self.k.dispatch_blocking(blocker), blocked_id)):
                if count > 0:
                    pipe.hset(key, fld, count)
                else:
                    pipe.hdel(key, fld)
        self.ix.stage(pipe, plan)

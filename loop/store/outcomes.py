"""Outcomes: a monitor's verdict flows back into Loop in the write that records it (issue 13).

When a monitor is set ``done`` with an ``outcome``, :class:`OutcomeHook` (an issue hook, so inside
the monitor update's WATCH/MULTI) gives the hypothesis the monitor verifies the same outcome, and
for ``invalidated`` also records a new signal (``source: "loop"``, ``type: "monitor.invalidated"``)
with its triage issue and a ``related`` relation from that issue to the monitor. One transaction:
no crash can leave the monitor done without its signal. At most one such signal per monitor: the
signal's id is kept in the monitor's dispatch state (``outcomeSignal``), watched, so a re-sent
PATCH, a second ``invalidated`` or a concurrent write never records a second one.

The verified hypothesis: the one a relation of the monitor points to (the planning prompt creates
it), else the single hypothesis among the monitor's siblings (or its parent, if that is one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loop import models
from loop.ids import new_id
from loop.models import ISSUE_FIELDS, RELATION_FIELDS, Row
from loop.store.signals import title_for
from loop.store.types import PLAIN, IssueHook, Pipe, WriteIntent
from loop.tunables import CHILDREN_LIMIT

if TYPE_CHECKING:
    from loop.store.base import RedisStore
    from loop.store.signals import Signals

SOURCE = "loop"
SIGNAL_TYPE = "monitor.invalidated"
#: Monitor priority -> signal severity (the inverse of signals.PRIORITY; 0 "none" counts as medium).
SEVERITY = {1: "critical", 2: "high", 3: "medium", 4: "low", 0: "medium"}
#: Field of ``P:dispatch:issue:<monitorId>`` naming the signal its invalidation recorded.
MARKER = "outcomeSignal"


@dataclass
class Plan:
    """What the monitor's write adds, decided under WATCH and staged after MULTI."""

    hypothesis: tuple[Row, Row, list[Any]] | None = None  # (old, new, its hooks' states)
    signal: Row | None = None
    issue: Row | None = None
    issue_states: list[Any] = field(default_factory=list)
    relation: Row | None = None


def concluded(old: Row | None, new: Row) -> bool:
    """The write sets a monitor ``done`` with an outcome (or changes a done monitor's outcome)."""
    if new["type"] != "monitor" or new["deletedAt"] is not None or new["status"] != "done" or not new["outcome"]:
        return False
    return old is None or old["status"] != "done" or old["outcome"] != new["outcome"]


class OutcomeHook(IssueHook):
    def __init__(self, store: RedisStore, signals: Signals) -> None:
        self.s = store
        self.k = store.keys
        self.signals = signals

    def prepare(self, pipe: Pipe, old: Row | None, new: Row, intent: WriteIntent) -> Plan | None:
        if not concluded(old, new):
            return None
        plan = Plan()
        hyp = self.verified(pipe, new)
        if hyp is not None and hyp["outcome"] != new["outcome"]:
            hyp_new, states = self.s.issues.prepare_update(pipe, hyp, {"outcome": new["outcome"]}, PLAIN)
            plan.hypothesis = (hyp, hyp_new, states)
        if new["outcome"] == "invalidated":
            state = self.k.dispatch_state(new["id"])
            pipe.watch(state)
            if not pipe.hget(state, MARKER):
                self._plan_signal(pipe, plan, new, hyp)
        return plan

    def _plan_signal(self, pipe: Pipe, plan: Plan, monitor: Row, hyp: Row | None) -> None:
        payload = {
            "message": f"Monitor #{monitor['number']} invalidated: {monitor['title']}",
            "monitorId": monitor["id"], "monitorNumber": monitor["number"], "monitorTitle": monitor["title"],
            "hypothesisId": hyp["id"] if hyp else None, "hypothesisNumber": hyp["number"] if hyp else None,
            "hypothesisTitle": hyp["title"] if hyp else None,
            "hypothesis": hyp["hypothesis"] if hyp else None,
            "summary": monitor["agentSummary"], "outcome": monitor["outcome"],
        }
        severity = SEVERITY.get(monitor["priority"] or 0, "medium")
        data = self.signals.issue_data(SOURCE, severity, payload, title_for(SOURCE, SIGNAL_TYPE, payload),
                                       monitor["projectId"])
        plan.issue = self.s.issues.new_row(data)
        plan.issue_states = self.s.issues.prepare_create(pipe, plan.issue, PLAIN)
        plan.signal = self.signals.new_row({"source": SOURCE, "type": SIGNAL_TYPE, "severity": severity,
                                            "payload": payload}, monitor["projectId"])
        plan.relation = {"id": new_id(), "type": "related", "issueId": plan.issue["id"],
                         "relatedIssueId": monitor["id"], "createdAt": self.s.now()}

    def verified(self, pipe: Pipe, monitor: Row) -> Row | None:
        """The hypothesis the monitor verifies (read under WATCH), or ``None``."""
        rel_key = self.k.issue_relations(monitor["id"])
        pipe.watch(rel_key)
        rels = [models.decode(RELATION_FIELDS, raw) for raw in self._hashes(
            [self.k.row("relation", rid) for rid in pipe.zrange(rel_key, 0, -1)]) if raw]
        candidates = [r["relatedIssueId"] for r in rels if r["type"] == "related"]
        for row in self._issues(pipe, candidates):
            if row["type"] == "hypothesis":
                return row
        parent = monitor["parentId"]
        if not parent:
            return None
        siblings = self.s.r.zrevrange(self.k.issue_index("parent", parent), 0, CHILDREN_LIMIT - 1)
        hyps = [r for r in self._issues(pipe, [parent, *siblings]) if r["type"] == "hypothesis"]
        return hyps[0] if len(hyps) == 1 else None

    def _hashes(self, keys: list[str]) -> list[dict[str, str]]:
        reader = self.s.r.pipeline(transaction=False)
        for key in keys:
            reader.hgetall(key)
        return list(reader.execute())

    def _issues(self, pipe: Pipe, ids: list[str]) -> list[Row]:
        """Live issues among ``ids``, watched (a concurrent change aborts and retries the write)."""
        if not ids:
            return []
        pipe.watch(*[self.k.issue(i) for i in ids])
        rows = [models.decode(ISSUE_FIELDS, raw) for raw in self._hashes([self.k.issue(i) for i in ids]) if raw]
        return [r for r in rows if r["deletedAt"] is None]

    def stage(self, pipe: Pipe, old: Row | None, new: Row, plan: Plan | None) -> None:
        if plan is None:
            return
        if plan.hypothesis is not None:
            hyp_old, hyp_new, states = plan.hypothesis
            self.s.issues.stage_update(pipe, hyp_old, hyp_new, states)
        if plan.signal is not None and plan.issue is not None and plan.relation is not None:
            self.s.issues.stage_create(pipe, plan.issue, plan.issue_states)
            self.signals.stage(pipe, plan.signal, plan.issue)
            rel = plan.relation
            self.s.write_row(pipe, "relation", RELATION_FIELDS, rel["id"], rel)
            pipe.zadd(self.k.issue_relations(rel["issueId"]), {rel["id"]: self.s.next_seq()})
            pipe.hset(self.k.dispatch_state(new["id"]), MARKER, plan.signal["id"])

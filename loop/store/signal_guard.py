"""The signal an issue write carries, and the issue hook that checks and stages it inside that
write's transaction (loop/store/signals.py writes through it; registered by loop/runtime.py).

The hook re-checks, under WATCH, what the signal write was planned on: the delivery guard
(:class:`AlreadyRecorded`), the fingerprint group (:class:`Regroup`), then queues the signal,
its group mapping, goal readings and recurrence relation after MULTI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loop import models
from loop.ids import new_id
from loop.models import Row
from loop.store.goals import Reading, ReadingWrite
from loop.store.types import IssueHook, Pipe, WriteIntent

if TYPE_CHECKING:
    from loop.store.base import RedisStore
    from loop.store.signals import Signals


class AlreadyRecorded(Exception):
    """The delivery's guard key exists: another run already recorded it."""

    def __init__(self, signal_id: str) -> None:
        super().__init__(signal_id)
        self.signal_id = signal_id


class Regroup(Exception):
    """The fingerprint's group moved between the read and the write (its issue closed, reopened,
    or another signal opened the next one): the signal write starts over."""


@dataclass
class SignalWrite:
    """The signal an issue write carries (``WriteIntent.signal``), staged in that write's MULTI.

    ``group``: the fingerprint's ``P:signal:group:<digest>`` key; ``expect``: on a create, the
    issue the group named when the write was planned (``None``, or the closed previous issue);
    ``previous``: that closed issue, which the new one relates to; ``reading``: a goal reading
    recorded with the signal.
    """

    signal: Row
    guard: str | None = None
    guard_ttl: int | None = None
    group: str | None = None
    expect: str | None = None
    previous: Row | None = None
    readings: list[tuple[str, Reading]] = dataclasses.field(default_factory=list)


@dataclass
class _Staged:
    write: SignalWrite
    readings: list[ReadingWrite]
    relation: Row | None
    relation_states: list[Any]


class GuardHook(IssueHook):
    """Checks, inside the issue write's transaction, what the signal it carries depends on.

    Registered FIRST among the issue hooks (:func:`loop.runtime.build`), so its WATCHes precede
    any read another hook makes in ``prepare``.

    ``prepare`` runs before MULTI: the delivery guard (``intent.guard``) existing abandons the
    write (:class:`AlreadyRecorded`); a fingerprint group that no longer names what the write was
    planned on abandons it too (:class:`Regroup`); a goal reading is read. Everything read is
    WATCHed, so a concurrent change fails the EXEC and the transaction re-runs these checks.
    ``stage`` queues the signal (and its reading, group mapping, recurrence relation).
    """

    def __init__(self, signals: Signals) -> None:
        self.signals = signals

    def prepare(self, pipe: Pipe, old: Row | None, new: Row, intent: WriteIntent) -> Any:
        w = intent.signal if isinstance(intent.signal, SignalWrite) else None
        guard = w.guard if w is not None else intent.guard if old is None else None
        if guard is not None:
            existing = watched_get(pipe, "guard", guard)
            if existing is not None:
                raise AlreadyRecorded(existing)
        if w is None:
            return None
        s = self.signals.s
        if w.group is not None:
            current = watched_get(pipe, "group", w.group)
            if old is not None and current != new["id"]:
                raise Regroup()
            if old is None:
                if current != w.expect:
                    raise Regroup()
                if current is not None:  # the previous issue must still be closed
                    pipe.watch(s.keys.issue(current))
                    if is_open(_issue_in(pipe, s, current)):
                        raise Regroup()
        readings = [s.goals.prepare_reading(pipe, goal_id, r) for goal_id, r in w.readings]
        relation = None
        states: list[Any] = []
        if old is None and w.previous is not None and w.previous["deletedAt"] is None:
            relation = {"id": new_id(), "type": "related", "issueId": new["id"],
                        "relatedIssueId": w.previous["id"], "createdAt": new["createdAt"]}
            states = [h.prepare(pipe, relation, True) for h in s.relations.hooks]
        return _Staged(w, readings, relation, states)

    def stage(self, pipe: Pipe, old: Row | None, new: Row, state: Any) -> None:
        if not isinstance(state, _Staged):
            return
        s, w = self.signals.s, state.write
        # A grouped signal keeps its own payload; a new issue's is stored once, as its signalPayload.
        # A new issue's group is set to name it by the same command (signal_stage.lua).
        self.signals.stage_signal(pipe, w, new, payload=w.signal.get("payload") if old is not None else None,
                                  group=w.group if old is None else None)
        for reading in state.readings:
            s.goals.stage_reading(pipe, reading)
        if state.relation is not None:
            rel = state.relation
            s.write_row(pipe, "relation", models.RELATION_FIELDS, rel["id"], rel)
            seq = s.next_seq()
            pipe.zadd(s.keys.issue_relations(new["id"]), {rel["id"]: seq})
            # Both directions, as Relations.create: the previous issue's incomingRelations, and
            # retention purging it finds (and removes) this relation.
            pipe.zadd(s.keys.issue_relations_in(rel["relatedIssueId"]), {rel["id"]: seq})
            for h, st in zip(s.relations.hooks, state.relation_states, strict=True):
                h.stage(pipe, rel, True, st)


def watched_get(pipe: Pipe, kind: str, key: str) -> str | None:
    """The value of string ``key`` (a fingerprint's group, a delivery's guard), WATCHed: read once
    per transaction attempt and kept in ``pipe.attempt_reads[(kind, key)]``. Found there already
    when it was read another way: the signal's own transaction reads its group with the issue
    (``signal_join.lua``/``signal_open.lua``; a change after that read fails the EXEC anyway), and
    the one command a new issue composes into checks both keys itself (``Issues.create_one``)."""
    memo: dict[object, object] | None = getattr(pipe, "attempt_reads", None)
    if memo is not None and (kind, key) in memo:
        found = memo[(kind, key)]
        return found if isinstance(found, str) else None
    pipe.watch(key)
    current = pipe.get(key)
    if memo is not None:
        memo[(kind, key)] = current
    return current


def remember_group(pipe: Pipe, group: str, current: str | None) -> None:
    memo: dict[object, object] | None = getattr(pipe, "attempt_reads", None)
    if memo is not None:
        memo[("group", group)] = current


def _issue_in(pipe: Pipe, store: RedisStore, issue_id: str) -> Row | None:
    raw = pipe.hgetall(store.keys.issue(issue_id))
    return models.decode(models.ISSUE_FIELDS, raw) if raw else None


def is_open(issue: Row | None) -> bool:
    """Whether a group's issue still collects its signals: live and not done or canceled."""
    return issue is not None and issue["deletedAt"] is None and issue["status"] not in models.RESOLVED_STATUSES

"""Signals: what the outside world reported, each tied to the triage issue it created.

A signal and its issue are written in ONE atomic step: the issue create's transaction (its
issue hooks stage the signal), or the one command that transaction composes into when it is made
of scripts alone (``Issues.create_one``). A webhook delivery additionally carries a
*guard* key: the "already normalized" marker, written in that same step and checked by it (WATCHed
while a transaction prepares, or checked by the one command), so a job that runs twice (retry after a crash) or concurrently
(two workers) leaves exactly one signal and one issue.

Lists come from zset indexes scored by the issue number (creation order); a filtered
total is a ZCARD, or with two or three filters a count kept per combination of filter values
(``P:counts:signals``: signals are never updated nor deleted, so one HINCRBY per combination at
creation keeps it exact) and a walk of the smallest filter's zset checking each member in the
others, stopping once the page is full (``issue_list.lua`` with zsets only): O(page), never an
intersection of whole indexes.

A signal with a ``fingerprint`` whose group (``P:signal:group:<digest>``) names an open issue joins
it instead (docs/signals.md). When no issue hook has anything to stage (no delivery guard, no goal
reading, no priority raise: the usual repeat), one atomic command checks the group and the issue
and writes the join (``signal_append.lua``): 1 round trip, and concurrent joins of one group never
fail each other. Otherwise one transaction WATCHes the group and the issue, reading both in one
command (``signal_join.lua``), the issue update staged by ``Issues.prepare_update`` and
:class:`GuardHook` staging the signal. A fingerprint's first signal is one command when its issue's
transaction is made of scripts alone (``Issues.create_one``: ``issue_new.lua`` checks the group and
the delivery guard, draws the number and writes); otherwise (a reading, a recurrence) it WATCHes the
group, checks it and draws the issue number in one command (``signal_open.lua``). Which issue to check comes from a
per-process hint (``Signals.hints``), re-checked by the script or under WATCH: never trusted.

A new issue's payload is stored once, as the triage issue's ``signalPayload`` (a grouped signal
keeps its own); a signal's ``payload``
is read from there (one pipelined HGET per row). Signals written before that keep their own
copy, which is served as is.
"""

from __future__ import annotations

import builtins
import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

import orjson

from loop import models
from loop.clock import iso
from loop.errors import Conflict
from loop.ids import new_id
from loop.keys import ID_WIDTH
from loop.models import Row
from loop.redis_commands import Value
from loop.scripts import eval_body, watch_eval
from loop.store.goals import Reading
from loop.store.one_command import Unexpected
from loop.store.signal_guard import (
    AlreadyRecorded,
    GuardHook,
    Regroup,
    SignalWrite,
    is_open,
    remember_group,
)
from loop.store.types import Pipe, WriteIntent, is_id
from loop.tunables import (
    GROUP_ATTEMPTS,
    GROUP_HINTS,
    GROUP_LOCK_STRIPES,
    GROUP_RECENT_PAYLOAD_BYTES,
    GROUP_RECENT_SIGNALS,
    LIST_BLOCK_BYTES,
)

if TYPE_CHECKING:
    from loop.store.base import RedisStore

#: ``loop/lua/issue_list.lua``, whose zset walk serves signal filters too.
LIST_SCRIPT = "issue_list"
#: The reads of a grouped signal's / a new group's transaction (``loop/lua/signal_*.lua``).
JOIN_SCRIPT, OPEN_SCRIPT = "signal_join", "signal_open"
#: A new signal's row, indexes and counts, queued in its issue's MULTI (``loop/lua/signal_stage.lua``).
STAGE_SCRIPT = "signal_stage"
#: A grouped signal joining its open issue in one atomic command (``loop/lua/signal_append.lua``).
APPEND_SCRIPT = "signal_append"
SIGNAL_FIELDS: dict[str, str] = {
    "id": "s", "source": "s", "sourceId": "s", "type": "s", "severity": "s", "payload": "j",
    "issueId": "s", "projectId": "s", "deliveryId": "s", "createdAt": "t", "fingerprint": "s",
}
#: Severity -> issue priority (contract 4.1): critical 1 (urgent) ... low 4.
PRIORITY = {"critical": 1, "high": 2, "medium": 3, "low": 4}
#: Filters of ``GET /api/signals`` -> index field name.
FILTERS = {"source": "source", "severity": "severity", "projectId": "project"}
MAX_TITLE = 500

@dataclass(frozen=True)
class Recorded:
    signal: Row
    issue: Row
    created: bool
    #: The signal joined an open issue of its fingerprint instead of opening one.
    grouped: bool = False


def title_for(source: str, type_: str, payload: Mapping[str, Any]) -> str:
    """``[<source>] <type>: <summary>`` (contract 4.1), summary = message, title or type."""
    summary = payload.get("message")
    if not isinstance(summary, str):
        summary = payload.get("title")
    if not isinstance(summary, str):
        summary = type_
    return clip(f"[{source}] {type_}: {summary}")


def combo_field(values: Mapping[str, Any]) -> str:
    """The ``P:counts:signals`` field of one combination of filter values (JSON: unambiguous
    whatever a free-text source holds)."""
    return orjson.dumps([[name, str(values[name])] for name in FILTERS if name in values]).decode()


def combo_fields(signal: Mapping[str, Any]) -> list[str]:
    """Every combination of two or three of the signal's filter values (what a list can ask for)."""
    present = [name for name in FILTERS if signal.get(name) is not None]
    return [combo_field({n: signal[n] for n in names})
            for size in range(2, len(present) + 1) for names in combinations(present, size)]


def clip(title: str) -> str:
    """Titles are bounded like user-written ones (500 characters)."""
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


class Signals:
    """Create (atomically with the issue), get and list signals.

    ``guard_hook`` must be among the store's issue hooks, first (:func:`loop.runtime.build`)."""

    def __init__(self, store: RedisStore) -> None:
        self.s = store
        self.k = store.keys
        self.guard_hook = GuardHook(self)
        #: Group key -> the issue id this process last saw it name (see :meth:`_hint`).
        self.hints: dict[str, str] = {}
        #: Striped locks serializing this process's writes to one group (:meth:`create`).
        self.group_locks = [threading.Lock() for _ in range(GROUP_LOCK_STRIPES)]

    # ------------------------------------------------------------------ reads
    def get(self, signal_id: str) -> Row | None:
        row = self.s.get_row("signal", SIGNAL_FIELDS, signal_id)
        return self._with_payloads([row])[0] if row else None

    def get_live(self, signal_id: str) -> Row:
        return self._with_payloads([self.s.live_row("signal", SIGNAL_FIELDS, signal_id, "Signal not found")])[0]

    def _with_payloads(self, rows: list[Row], counts: bool = False) -> list[Row]:
        """Fill each row's ``payload`` from its issue's ``signalPayload`` (where it is stored); with
        ``counts`` (lists), also ``groupCount``, its issue's ``signalCount`` (how many signals its
        group holds; ``None`` for issues older than grouping). One pipelined HMGET per row."""
        wanted = [r for r in rows if r.get("issueId") and (counts or r.get("payload") is None)]
        if wanted:
            pipe = self.s.r.pipeline(transaction=False)
            for r in wanted:
                pipe.hmget(self.k.issue(r["issueId"]), ["signalPayload", "signalCount"])
            for r, (raw, count) in zip(wanted, pipe.execute(), strict=True):
                if r.get("payload") is None:
                    r["payload"] = models.decode({"payload": "j"}, {"payload": raw})["payload"] if raw else None
                if counts:
                    r["groupCount"] = int(count) if count else None
        if counts:
            for r in rows:
                r.setdefault("groupCount", None)
        return rows

    @staticmethod
    def wire(signal: Row) -> Row:
        """The signal's JSON; a list row keeps its ``groupCount``."""
        out = models.wire(SIGNAL_FIELDS, signal)
        if "groupCount" in signal:
            out["groupCount"] = signal["groupCount"]
        return out

    def list(self, filters: Mapping[str, Any], limit: int, offset: int) -> tuple[list[Row], int]:  # noqa: A003
        """Signals matching every filter (source, severity, projectId), creation order, each with
        its ``groupCount``."""
        sets = [self.k.signal_index(field, str(filters[name]))
                for name, field in FILTERS.items() if filters.get(name) is not None]
        if not sets:
            rows, count = self.s.page(self.k.signal_index(), "signal", SIGNAL_FIELDS, limit, offset)
            return self._with_payloads(rows, counts=True), count
        if len(sets) == 1:
            rows, count = self.s.page(sets[0], "signal", SIGNAL_FIELDS, limit, offset)
            return self._with_payloads(rows, counts=True), count
        # The issue list's zset walk: the smallest set in order, each member ZSCOREd in the others,
        # stopping once the page is full since the combination's count gives the total (where a
        # ZINTERSTORE costs the sum of the sets). The script's issue-id string and scratch bitmaps
        # are declared but unused without bitmap groups.
        k = self.k
        combo = combo_field({name: filters[name] for name in FILTERS if filters.get(name) is not None})
        keys = [k.issue_ids(), k.tmp("signals:a"), k.tmp("signals:b"), *sets, k.counts("signals")]
        args: list[Value] = [offset, limit, ID_WIDTH, LIST_BLOCK_BYTES, 0, len(sets), 1, combo]
        out = self.s.scripts[LIST_SCRIPT](keys=keys, args=args)
        # out: {total, 0 (no hint: no rows), ids...}
        return self._with_payloads(self.s.get_rows("signal", SIGNAL_FIELDS, out[2:]), counts=True), int(out[0])

    def _recorded(self, signal_id: str) -> Recorded:
        signal = self.get(signal_id)
        issue = self.s.issues.get(signal["issueId"]) if signal else None
        if signal is None or issue is None:
            # The guard outlived nothing: only retention hard-deletes them, long after a job re-runs.
            raise LookupError(f"guard names signal {signal_id!r} which does not exist")
        return Recorded(signal, issue, created=False)

    # ------------------------------------------------------------------ writes
    def issue_data(self, source: str, severity: str, payload: Mapping[str, Any], title: str,
                   project_id: str | None = None, description: str | None = None) -> Row:
        """The triage issue of a signal: type signal, priority from severity, promoted to
        ``todo`` unless ``promote_signals_to_todo`` is off (improvement 2)."""
        return {
            "title": clip(title), "description": description, "type": "signal",
            "status": "todo" if self.s.settings.promote_signals_to_todo else "triage",
            "priority": PRIORITY[severity], "projectId": project_id,
            "signalSource": source, "signalPayload": dict(payload),
        }

    def new_row(self, signal_data: Mapping[str, Any], project_id: str | None) -> Row:
        """A new signal row (``issueId`` is set when staged with its issue)."""
        signal: Row = dict.fromkeys(SIGNAL_FIELDS)
        signal.update({k: v for k, v in signal_data.items() if k in SIGNAL_FIELDS})
        signal.update(id=new_id(), createdAt=self.s.now(), projectId=project_id)
        return signal

    def stage(self, pipe: Pipe, signal: Row, issue: Row) -> None:
        """Queue the writes of a new ``signal`` on a MULTI pipeline that also creates its triage
        ``issue`` (a monitor's invalidated outcome, loop/store/outcomes.py); the issue holds the payload."""
        self.stage_signal(pipe, SignalWrite(signal), issue, None)

    def create(self, signal_data: Mapping[str, Any], issue_data: Mapping[str, Any],
               guard: str | None = None, guard_ttl: int | None = None,
               readings: Sequence[tuple[str, Reading]] = ()) -> Recorded:
        """Write the signal and its issue in one MULTI. With ``guard``, at most once per guard:
        a second call returns what the first recorded (``created=False``).

        With ``signal_data["fingerprint"]``, a signal whose fingerprint's issue is still open joins
        it (``grouped=True``) instead: one MULTI writes the signal and updates the issue (count,
        last time, recent signals, priority raised, dispatch rescored by the issue hooks). With
        ``readings`` ((goal id, reading) pairs), the goal readings are recorded in the same MULTI.
        """
        signal = self.new_row(signal_data, issue_data.get("projectId"))
        fingerprint = signal.get("fingerprint")
        write = SignalWrite(signal, guard, guard_ttl, readings=list(readings))
        try:
            if fingerprint is None:
                return self._open(write, issue_data)
            write.group = self.k.signal_group(fingerprint_digest(fingerprint))
            # One write per group at a time in this process: its threads would only fail each
            # other's EXECs (4 threads on one group: 3 EXECs per signal). WATCH still guards
            # against the other processes.
            with self.group_locks[hash(write.group) % GROUP_LOCK_STRIPES]:
                return self._grouped(write, issue_data)
        except AlreadyRecorded as exc:
            return self._recorded(exc.signal_id)

    def _grouped(self, write: SignalWrite, issue_data: Mapping[str, Any]) -> Recorded:
        group = write.group
        assert group is not None
        for _ in range(GROUP_ATTEMPTS):
            try:
                # The hint says which issue to WATCH with the group; each write re-reads the
                # group under that WATCH and starts over (Regroup) when it names another.
                hint = self.hints.get(group)
                if hint is not None:
                    joined = self._append(write, hint) if write.guard is None and not write.readings else None
                    if joined is not None:
                        return joined
                    joined = self._join(write, hint)
                    if joined is not None:
                        return joined
                write.expect = hint  # None, or the closed issue the group still names
                return self._open(write, issue_data)
            except (Regroup, Conflict):  # the group moved, or heavy contention on its issue
                continue
        raise Conflict("The signal's group is being modified concurrently; retry the request.")

    def _hint(self, group: str, current: str | None) -> None:
        """Remember what ``group`` was read (under WATCH) to name. A hint only picks which issue
        the next write of that fingerprint WATCHes and reads along with the group, saving the
        group's read before the transaction; it never answers anything (a stale one costs one
        Regroup). Bounded: cleared whole past GROUP_HINTS groups (atomic under threads)."""
        if current is None:
            self.hints.pop(group, None)
            return
        if len(self.hints) >= GROUP_HINTS and group not in self.hints:
            self.hints.clear()
        self.hints[group] = current

    def _open(self, write: SignalWrite, issue_data: Mapping[str, Any]) -> Recorded:
        """A new triage issue for the signal (a recurrence when ``write.expect`` names a closed one)."""
        signal = write.signal
        data = {**issue_data, "signalCount": 1, "lastSignalAt": signal["createdAt"]}
        if write.expect is not None:
            write.previous = self.s.issues.get(write.expect)
            if write.previous is not None:
                prev = write.previous
                note = (f"Recurrence: signals with this fingerprint were grouped under #{prev['number']} "
                        f"({'deleted' if prev['deletedAt'] is not None else prev['status']}), now closed.")
                data["description"] = f"{note}\n\n{data['description']}" if data.get("description") else note
        intent = WriteIntent(guard=write.guard, signal=write)
        group = write.group
        # Neither a group nor a guard to check: Issues.create tries the one command itself.
        if (group is not None or write.guard is not None) and write.expect is None and not write.readings:
            opened = self._open_one(write, data, intent)
            if opened is not None:
                if group is not None:
                    self._hint(group, opened["id"])
                return Recorded(signal, opened, created=True)
        if group is None:
            return Recorded(signal, self.s.issues.create(data, intent=intent), created=True)
        issues = self.s.issues
        drawn: list[int] = []  # the number, drawn once however many times the transaction runs

        def tx(pipe: Pipe) -> Row:
            # WATCH of the group, its check and the number in one round trip (signal_open.lua).
            current, number = watch_eval(pipe, [group], OPEN_SCRIPT, [group, self.k.issue_seq()],
                                         write.expect or "", 0 if drawn else 1)
            remember_group(pipe, group, current)
            if current != write.expect:
                self._hint(group, current)
                raise Regroup()
            if number is not None:
                drawn.append(int(number))
            issue = issues.new_row(data, number=drawn[0])
            states = issues.prepare_create(pipe, issue, intent)  # the guard hook re-checks the group
            pipe.multi()
            issues.stage_create(pipe, issue, states)
            return issue

        issue = self.s.transact(tx)  # tx WATCHes the group
        self._hint(group, issue["id"])
        return Recorded(signal, issue, created=True)

    def _open_one(self, write: SignalWrite, data: Mapping[str, Any], intent: WriteIntent) -> Row | None:
        """The signal and its new issue in one atomic command (:meth:`Issues.create_one`: the
        fingerprint's group and the delivery's guard checked, then the issue's whole transaction),
        or ``None`` when that transaction needs the WATCH path. Raises :class:`Regroup` when the
        group names an issue meanwhile, :class:`AlreadyRecorded` when the guard is set (nothing
        written either way)."""
        checks = [(key, name) for key, name in ((write.group, "group"), (write.guard, "guard")) if key is not None]
        try:
            return self.s.issues.create_one(data, intent, expect=[(key, "") for key, _ in checks],
                                            known={(name, key): None for key, name in checks})
        except Unexpected as exc:
            key, name = checks[exc.index]
            if name == "guard" and exc.value is not None:
                raise AlreadyRecorded(exc.value) from None
            self._hint(key, exc.value)
            raise Regroup() from None

    def _append(self, write: SignalWrite, issue_id: str) -> Recorded | None:
        """Join open issue ``issue_id`` in one atomic command (``signal_append.lua``), when no issue
        hook has anything to stage (no guard, no reading, no priority raise); ``None`` when it
        wrote nothing (that, or the group moved, or the issue is closed): :meth:`_join` decides.

        No WATCH: concurrent signals of one group, from any process, never fail each other."""
        if not is_id(issue_id):
            return None
        signal, group = write.signal, write.group
        assert group is not None
        signal["issueId"] = issue_id
        row, indexes, combos = self._signal_parts(signal, signal.get("payload"))
        k, sid = self.k, signal["id"]
        keys = [group, k.issue(issue_id), k.issue_roots(), k.row("signal", sid), k.signal_index(),
                k.retention("payloads"), k.counts("signals"), *indexes]
        out = self.s.scripts[APPEND_SCRIPT](keys=keys, args=[
            issue_id, self.s.now(), PRIORITY[signal["severity"]], GROUP_RECENT_SIGNALS,
            orjson.dumps(recent_entry(signal)), sid, signal["createdAt"],
            len(models.RESOLVED_STATUSES), *models.RESOLVED_STATUSES,
            len(row), *(x for item in row.items() for x in item), *combos])
        if not int(out[0]):
            signal["issueId"] = None
            return None
        issue = models.decode(models.ISSUE_FIELDS, models.pairs(out[1]))
        return Recorded(signal, issue, created=True, grouped=True)

    def _join(self, write: SignalWrite, issue_id: str) -> Recorded | None:
        """Attach the signal to open issue ``issue_id``; ``None`` when it is closed (or gone).

        One WATCH of the group and the issue, one read of both (``signal_join.lua``), one MULTI:
        ``issue_id`` (the hint) only said which issue to watch."""
        if not is_id(issue_id):
            return None
        signal, group, key = write.signal, write.group, self.k.issue(issue_id)
        assert group is not None
        issues = self.s.issues

        def tx(pipe: Pipe) -> Row | None:
            current, raw = watch_eval(pipe, [group, key], JOIN_SCRIPT, [group, key])
            remember_group(pipe, group, current)
            if current != issue_id:
                self._hint(group, current)
                raise Regroup()
            old = models.decode(models.ISSUE_FIELDS, models.pairs(raw)) if raw else None
            if old is None or not is_open(old):
                return None
            changes: Row = {"signalCount": (old["signalCount"] or 1) + 1,
                            "lastSignalAt": max(old["lastSignalAt"] or 0, signal["createdAt"]),
                            "signalRecent": recent(old["signalRecent"], signal)}
            raised = PRIORITY[signal["severity"]]
            if not old["priority"] or raised < old["priority"]:  # 0 = none: any severity raises it
                changes["priority"] = raised
            new, states = issues.prepare_update(pipe, old, changes, WriteIntent(signal=write))
            pipe.multi()
            issues.stage_update(pipe, old, new, states)
            return new

        issue = self.s.transact(tx)  # tx WATCHes the group and the issue
        if issue is None:
            return None
        return Recorded(signal, issue, created=True, grouped=True)

    def stage_signal(self, pipe: Pipe, write: SignalWrite, issue: Row, payload: Any, group: str | None = None) -> None:
        """Queue the signal row, its indexes and counts, ``group`` (a new issue's fingerprint
        group) set to name ``issue``, and its delivery guard (after MULTI)."""
        signal = write.signal
        signal["issueId"] = issue["id"]
        sid, score = signal["id"], issue["number"]
        # Scored by the issue's number like every signal: a grouped signal is listed with its group,
        # and retention finds an issue's signals by that score.
        # One command (signal_stage.lua) for the row (its set fields: a new row has no null one
        # to HDEL), the indexes, the counts, the group and the guard: 1 queued command instead of 7+.
        row, indexes, combos = self._signal_parts(signal, payload)
        guard = write.guard
        keys = [self.k.row("signal", sid), self.k.signal_index(), self.k.retention("payloads"),
                self.k.counts("signals"), *indexes, *([group] if group is not None else []),
                *([guard] if guard is not None else [])]
        ttl = "" if guard is None else str(write.guard_ttl or 0)  # "0": a guard that never expires
        eval_body(pipe, STAGE_SCRIPT, keys, sid, score, signal["createdAt"], len(row),
                  *(x for item in row.items() for x in item), len(indexes),
                  issue["id"] if group is not None else "", ttl, *combos)

    def _signal_parts(self, signal: Row, payload: Any
                      ) -> tuple[dict[str, str], builtins.list[str], builtins.list[str]]:
        """A new signal's row (non-null fields, ``payload`` as its payload), filter indexes and
        ``P:counts:signals`` fields: what signal_stage.lua and signal_append.lua write."""
        row = models.encode(SIGNAL_FIELDS, {**signal, "payload": payload})
        indexes = [self.k.signal_index(field, str(signal[name]))
                   for name, field in FILTERS.items() if signal.get(name) is not None]
        return row, indexes, combo_fields(signal)


def fingerprint_digest(fingerprint: str) -> str:
    """The fingerprint as a fixed-size key component (first 32 hex of its SHA-256)."""
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:32]


def recent(previous: Any, signal: Row) -> list[Row]:
    """The issue's ``signalRecent`` with ``signal`` first, capped (GROUP_RECENT_SIGNALS), each
    payload whole up to GROUP_RECENT_PAYLOAD_BYTES of JSON, else an excerpt of that JSON."""
    older = [r for r in previous if isinstance(r, dict)] if isinstance(previous, list) else []
    return [recent_entry(signal), *older][:GROUP_RECENT_SIGNALS]


def recent_entry(signal: Row) -> Row:
    """The signal's ``signalRecent`` entry: its payload whole up to GROUP_RECENT_PAYLOAD_BYTES of
    JSON, else an excerpt of that JSON."""
    payload = signal.get("payload")
    raw = orjson.dumps(payload)
    kept: Any = payload if len(raw) <= GROUP_RECENT_PAYLOAD_BYTES else \
        raw[:GROUP_RECENT_PAYLOAD_BYTES].decode("utf-8", "ignore") + "…"
    return {"signalId": signal["id"], "severity": signal["severity"], "at": iso(signal["createdAt"]),
            "payload": kept}

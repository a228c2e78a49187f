"""Signals: what the outside world reported, each tied to the triage issue it created.

A signal and its issue are written in ONE MULTI/EXEC (the issue create's transaction,
extended through ``Issues.create(extra=...)``). A webhook delivery additionally carries a
*guard* key: the "already normalized" marker, written in that same MULTI and WATCHed while
the transaction prepares, so a job that runs twice (retry after a crash) or concurrently
(two workers) leaves exactly one signal and one issue.

Lists come from zset indexes scored by the issue number (creation order); a filtered
total is a ZCARD, or with two or three filters a count kept per combination of filter values
(``P:counts:signals``: signals are never updated nor deleted, so one HINCRBY per combination at
creation keeps it exact) and a walk of the smallest filter's zset checking each member in the
others, stopping once the page is full (``issue_list.lua`` with zsets only): O(page), never an
intersection of whole indexes.

The payload is stored once, as the triage issue's ``signalPayload``; a signal's ``payload``
is read from there (one pipelined HGET per row). Signals written before that keep their own
copy, which is served as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

import orjson

from loop import models
from loop.ids import new_id
from loop.keys import ID_WIDTH
from loop.models import Row
from loop.store.types import IssueHook, WriteIntent
from loop.tunables import LIST_BLOCK_BYTES

if TYPE_CHECKING:
    from loop.store.base import RedisStore

#: ``loop/lua/issue_list.lua``, whose zset walk serves signal filters too.
LIST_SCRIPT = "issue_list"
SIGNAL_FIELDS: dict[str, str] = {
    "id": "s", "source": "s", "sourceId": "s", "type": "s", "severity": "s", "payload": "j",
    "issueId": "s", "projectId": "s", "deliveryId": "s", "createdAt": "t",
}
#: Severity -> issue priority (contract 4.1): critical 1 (urgent) ... low 4.
PRIORITY = {"critical": 1, "high": 2, "medium": 3, "low": 4}
#: Filters of ``GET /api/signals`` -> index field name.
FILTERS = {"source": "source", "severity": "severity", "projectId": "project"}
MAX_TITLE = 500

class AlreadyRecorded(Exception):
    """The delivery's guard key exists: another run already recorded it."""

    def __init__(self, signal_id: str) -> None:
        super().__init__(signal_id)
        self.signal_id = signal_id


class GuardHook(IssueHook):
    """WATCHes the delivery guard (``intent.guard``) inside the issue-create transaction.

    Registered FIRST among the issue hooks (:func:`loop.runtime.build`), so its WATCH precedes
    any read another hook makes in ``prepare``.

    ``prepare`` runs before MULTI: if the guard exists the create is abandoned; if another
    run sets it between here and EXEC, the EXEC fails (WatchError), the transaction is
    retried and this check then sees the guard. Issue updates and deletes are untouched.
    """

    def prepare(self, pipe: Any, old: Row | None, new: Row, intent: WriteIntent) -> Any:
        guard = intent.guard
        if guard is None or old is not None:
            return None
        pipe.watch(guard)
        existing = pipe.get(guard)
        if existing is not None:
            raise AlreadyRecorded(existing)
        return None


@dataclass(frozen=True)
class Recorded:
    signal: Row
    issue: Row
    created: bool


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
        self.guard_hook = GuardHook()

    # ------------------------------------------------------------------ reads
    def get(self, signal_id: str) -> Row | None:
        row = self.s.get_row("signal", SIGNAL_FIELDS, signal_id)
        return self._with_payloads([row])[0] if row else None

    def get_live(self, signal_id: str) -> Row:
        return self._with_payloads([self.s.live_row("signal", SIGNAL_FIELDS, signal_id, "Signal not found")])[0]

    def _with_payloads(self, rows: list[Row]) -> list[Row]:
        """Fill each row's ``payload`` from its issue's ``signalPayload`` (where it is stored)."""
        wanted = [r for r in rows if r.get("payload") is None and r.get("issueId")]
        if wanted:
            pipe = self.s.r.pipeline(transaction=False)
            for r in wanted:
                pipe.hget(self.k.issue(r["issueId"]), "signalPayload")
            for r, raw in zip(wanted, pipe.execute(), strict=True):
                r["payload"] = models.decode({"payload": "j"}, {"payload": raw})["payload"] if raw else None
        return rows

    @staticmethod
    def wire(signal: Row) -> Row:
        return models.wire(SIGNAL_FIELDS, signal)

    def list(self, filters: Mapping[str, Any], limit: int, offset: int) -> tuple[list[Row], int]:  # noqa: A003
        """Signals matching every filter (source, severity, projectId), creation order."""
        sets = [self.k.signal_index(field, str(filters[name]))
                for name, field in FILTERS.items() if filters.get(name) is not None]
        if not sets:
            rows, count = self.s.page(self.k.signal_index(), "signal", SIGNAL_FIELDS, limit, offset)
            return self._with_payloads(rows), count
        if len(sets) == 1:
            rows, count = self.s.page(sets[0], "signal", SIGNAL_FIELDS, limit, offset)
            return self._with_payloads(rows), count
        # The issue list's zset walk: the smallest set in order, each member ZSCOREd in the others,
        # stopping once the page is full since the combination's count gives the total (where a
        # ZINTERSTORE costs the sum of the sets). The script's issue-id string and scratch bitmaps
        # are declared but unused without bitmap groups.
        k = self.k
        combo = combo_field({name: filters[name] for name in FILTERS if filters.get(name) is not None})
        keys = [k.issue_ids(), k.tmp("signals:a"), k.tmp("signals:b"), *sets, k.counts("signals")]
        args = [offset, limit, ID_WIDTH, LIST_BLOCK_BYTES, 0, len(sets), 1, combo]
        out = self.s.scripts[LIST_SCRIPT](keys=keys, args=args)
        return self._with_payloads(self.s.get_rows("signal", SIGNAL_FIELDS, out[1:])), int(out[0])

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

    def stage(self, pipe: Any, signal: Row, issue: Row) -> None:
        """Queue the signal's writes on a MULTI pipeline that also creates its triage ``issue``
        (``create`` below; a monitor's invalidated outcome, loop/store/outcomes.py)."""
        signal["issueId"] = issue["id"]
        sid, score = signal["id"], issue["number"]
        # Not the payload: the issue holds it (signalPayload), read back by _with_payloads.
        self.s.write_row(pipe, "signal", SIGNAL_FIELDS, sid, {**signal, "payload": None})
        pipe.zadd(self.k.signal_index(), {sid: score})
        pipe.zadd(self.k.retention("payloads"), {sid: signal["createdAt"]})
        for name, field in FILTERS.items():
            if signal.get(name) is not None:
                pipe.zadd(self.k.signal_index(field, str(signal[name])), {sid: score})
        for field in combo_fields(signal):
            pipe.hincrby(self.k.counts("signals"), field, 1)

    def create(self, signal_data: Mapping[str, Any], issue_data: Mapping[str, Any],
               guard: str | None = None, guard_ttl: int | None = None) -> Recorded:
        """Write the signal and its issue in one MULTI. With ``guard``, at most once per guard:
        a second call returns what the first recorded (``created=False``)."""
        signal = self.new_row(signal_data, issue_data.get("projectId"))
        # No GET of the guard up front: the transaction checks it anyway (a repeated run only
        # wastes an issue number), and the common first run saves a round trip.

        def stage(pipe: Any, issue: Row) -> None:
            self.stage(pipe, signal, issue)
            if guard is not None:
                pipe.set(guard, signal["id"], ex=guard_ttl)

        try:
            issue = self.s.issues.create(issue_data, extra=stage, intent=WriteIntent(guard=guard))
        except AlreadyRecorded as exc:
            return self._recorded(exc.signal_id)
        return Recorded(signal, issue, created=True)

